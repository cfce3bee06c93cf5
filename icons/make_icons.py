"""Draws Switchboard's icon set (run once; the PNG/ICO/ICNS files are committed).

A patch panel: three jacks on the left routed by coloured cords to one output
on the right, on a rounded dark tile. Drawn at 4x and downsampled for smooth
edges. Needs Pillow: `python3 icons/make_icons.py`.
"""
from pathlib import Path
from PIL import Image, ImageDraw

HERE = Path(__file__).parent
S = 2048  # drawing size; every output is downsampled from it


def draw() -> Image.Image:
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    pad = S * 0.06
    d.rounded_rectangle([pad, pad, S - pad, S - pad], radius=S * 0.2, fill=(22, 27, 44, 255))
    d.rounded_rectangle([pad, pad, S - pad, S - pad], radius=S * 0.2, outline=(70, 82, 120, 255), width=int(S * 0.012))
    left_x, right_x = S * 0.28, S * 0.74
    ys = [S * 0.32, S * 0.5, S * 0.68]
    colours = [(255, 178, 62, 255), (84, 214, 172, 255), (108, 152, 255, 255)]
    out_y = S * 0.5
    w = int(S * 0.045)
    for y, c in zip(ys, colours):
        # a cord: horizontal out of the jack, then a smooth bend into the output
        pts = []
        for i in range(65):
            t = i / 64
            x = left_x + (right_x - left_x) * t
            ease = t * t * (3 - 2 * t)
            pts.append((x, y + (out_y - y) * ease))
        d.line(pts, fill=c, width=w, joint="curve")
    r = S * 0.065
    for y, c in zip(ys, colours):
        d.ellipse([left_x - r, y - r, left_x + r, y + r], fill=(240, 243, 250, 255))
        d.ellipse([left_x - r * 0.55, y - r * 0.55, left_x + r * 0.55, y + r * 0.55], fill=c)
    R = S * 0.09
    d.ellipse([right_x - R, out_y - R, right_x + R, out_y + R], fill=(240, 243, 250, 255))
    d.ellipse([right_x - R * 0.5, out_y - R * 0.5, right_x + R * 0.5, out_y + R * 0.5], fill=(22, 27, 44, 255))
    return img


def main() -> None:
    big = draw()
    sizes = {"32x32.png": 32, "128x128.png": 128, "128x128@2x.png": 256, "icon.png": 512}
    for name, px in sizes.items():
        big.resize((px, px), Image.LANCZOS).save(HERE / name)
    big.resize((256, 256), Image.LANCZOS).save(HERE / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    big.resize((1024, 1024), Image.LANCZOS).save(HERE / "icon.icns")


if __name__ == "__main__":
    main()
