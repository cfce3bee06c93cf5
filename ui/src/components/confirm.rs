//! A destructive button that asks first: the first click turns it into a
//! question with "Yes" and "Cancel" in place, so removing a key, a route or
//! a budget always takes two deliberate clicks (and no browser dialog).

use leptos::prelude::*;

#[component]
pub fn ConfirmButton(
    /// The button's text (`Remove`, `Delete`).
    #[prop(into)]
    label: String,
    /// The question asked in its place (`Remove the key of openai?`).
    #[prop(into)]
    question: String,
    /// The button's classes (tests and styles find it by them).
    #[prop(into)]
    class: String,
    /// Runs on "Yes".
    on_confirm: Callback<()>,
    /// Disables the button.
    #[prop(optional, into)]
    disabled: Signal<bool>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let button = move || {
        let (class, label) = (class.clone(), label.clone());
        view! {
            <button class=class disabled=move || disabled.get() on:click=move |_| asking.set(true)>{label}</button>
        }
    };
    view! {
        <Show when=move || asking.get() fallback=button>
            <span class="confirm" role="group" aria-label=question.clone()>
                <span class="confirm-question">{question.clone()}</span>
                <button class="small danger confirm-yes" on:click=move |_| { asking.set(false); on_confirm.run(()); }>"Yes"</button>
                <button class="small confirm-no" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}
