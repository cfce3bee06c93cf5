"""The official OpenAI and Anthropic Python SDKs against Switchboard's Local
API, for cli/tests/serve.rs. Usage:

    SB_BASE=http://127.0.0.1:PORT/v1 SB_TOKEN=sb-... python client.py '[["action", {...}], ...]'

Runs each action in order and prints one JSON array with a result per
action: what the SDK returned (text, usage, headers), or the exception it
raised (class, status, body, headers). Nothing here asserts: the Rust test
does, so a failure names the Switchboard behaviour that broke.
"""

import json
import os
import sys

import urllib.error
import urllib.request

import anthropic
import openai

BASE = os.environ["SB_BASE"]
TOKEN = os.environ.get("SB_TOKEN", "")
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


def oa(token=None):
    return openai.OpenAI(base_url=BASE, api_key=TOKEN if token is None else token, max_retries=0)


def an(token=None):
    return anthropic.Anthropic(
        base_url=BASE.removesuffix("/v1"), api_key=TOKEN if token is None else token, max_retries=0
    )


def failed(e):
    response = getattr(e, "response", None)
    return {
        "error": type(e).__name__,
        "status": getattr(e, "status_code", None),
        "message": str(e),
        "body": getattr(e, "body", None),
        "headers": dict(response.headers) if response is not None else None,
    }


def openai_chat(model=None, stream=False, include_usage=False, extra=None, token=None):
    client = oa(token)
    kwargs = {"model": model, "messages": MESSAGES}
    if extra:
        kwargs["extra_body"] = extra
    try:
        if stream:
            if include_usage:
                kwargs["stream_options"] = {"include_usage": True}
            raw = client.chat.completions.with_raw_response.create(stream=True, **kwargs)
            text, reasoning, finish, usage, models, choices = "", "", None, None, set(), []
            for chunk in raw.parse():
                models.add(chunk.model)
                choices.append(len(chunk.choices))
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    text += delta.content or ""
                    reasoning += (delta.model_extra or {}).get("reasoning") or ""
                    finish = chunk.choices[0].finish_reason or finish
                elif chunk.usage is not None:
                    usage = chunk.usage.model_dump()
            return {
                "text": text,
                "reasoning": reasoning,
                "finish": finish,
                "usage": usage,
                "models": sorted(models),
                "choices": choices,
                "headers": dict(raw.headers),
            }
        raw = client.chat.completions.with_raw_response.create(**kwargs)
        r = raw.parse()
        exact = json.loads(raw.http_response.text, parse_float=str)
        return {
            "text": r.choices[0].message.content,
            "finish": r.choices[0].finish_reason,
            "model": r.model,
            "usage": r.usage.model_dump(),
            "cost_text": exact["usage"]["cost"],
            "headers": dict(raw.headers),
        }
    except openai.APIError as e:
        return failed(e)


def openai_disconnect(model, keep=3):
    """Read `keep` text chunks of a stream, then hang up."""
    client = oa()
    got = []
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got.append(chunk.choices[0].delta.content)
        if len(got) >= keep:
            break
    stream.close()
    client.close()
    return {"got": "".join(got)}


def openai_give_up(model, seconds):
    """A non-streamed request the client stops waiting for."""
    try:
        oa().with_options(timeout=seconds).chat.completions.create(model=model, messages=MESSAGES)
        return {"gave_up": False}
    except openai.APITimeoutError:
        return {"gave_up": True}


def openai_models():
    try:
        client = oa()
        return {"ids": [m.id for m in client.models.list()], "raw": client.get("/models", cast_to=object)}
    except openai.APIError as e:
        return failed(e)


def anthropic_message(model, stream=False, thinking=False, max_tokens=100, token=None):
    client = an(token)
    kwargs = {
        "model": model,
        "max_tokens": max_tokens,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    if thinking:
        kwargs["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    try:
        delta_usage = None
        if stream:
            streamed = ""
            with client.messages.stream(**kwargs) as s:
                for event in s:
                    if event.type == "text":
                        streamed += event.text
                    elif event.type == "message_delta":
                        # The final counts and the cost; the SDK copies the
                        # counts it knows into the final message.
                        delta_usage = event.usage.model_dump()
                m = s.get_final_message()
                headers = dict(s.response.headers)
        else:
            raw = client.messages.with_raw_response.create(**kwargs)
            m = raw.parse()
            headers = dict(raw.headers)
            streamed = None
        return {
            "text": "".join(b.text for b in m.content if b.type == "text"),
            "thinking": "".join(b.thinking for b in m.content if b.type == "thinking"),
            "streamed": streamed,
            "model": m.model,
            "stop_reason": m.stop_reason,
            "usage": m.usage.model_dump(),
            "delta_usage": delta_usage,
            "headers": headers,
        }
    except anthropic.APIError as e:
        return failed(e)


def anthropic_models():
    try:
        return {"ids": [m.id for m in an().models.list()]}
    except anthropic.APIError as e:
        return failed(e)


def raw_post(path, body=None, text=None, size=None, token=None, headers=None):
    """A request no SDK would send: malformed JSON, a body of `size` bytes."""
    h = {"authorization": f"Bearer {TOKEN if token is None else token}", "content-type": "application/json"}
    h.update(headers or {})
    if size is not None:
        content = b'{"model":"x","messages":[{"role":"user","content":"' + b"a" * size + b'"}]}'
    elif text is not None:
        content = text.encode()
    else:
        content = json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=content, headers=h, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, headers, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, dict(e.headers), e.read()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return {"status": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": parsed}


ACTIONS = {
    f.__name__: f
    for f in [
        openai_chat,
        openai_disconnect,
        openai_give_up,
        openai_models,
        anthropic_message,
        anthropic_models,
        raw_post,
    ]
}

if __name__ == "__main__":
    results = [ACTIONS[name](**args) for name, args in json.loads(sys.argv[1])]
    print(json.dumps(results))
