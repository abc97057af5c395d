#!/usr/bin/env python3
"""The course's image batch (8.1): multiprocessing.Pool + Pillow, one image per task.

"Traiter chaque image d'un dossier sur un cœur différent": the GIL lets one thread run Python
at a time, so the course reaches for processes. Every image of IN_DIR becomes a thumbnail that
fits the box (Pillow's thumbnail(): aspect kept, never enlarged, JPEGs decoded at 1/2, 1/4 or
1/8 scale through draft()), written under OUT_DIR with the names the Rust example uses
(photo.jpg -> photo.jpg, logo.png -> logo.png.jpg). A file that cannot be read is reported,
not fatal.

`image-batch --python` runs this on the same folder, the same box and the same number of
workers, then checks that both wrote the same files with the same dimensions:
    cargo run --release -p examples-threads --bin image-batch -- --python
Alone:
    python3 image_batch.py IN_DIR OUT_DIR --workers 2 --size 256x256

Prints one JSON line: {"pillow", "workers", "images", "ok", "failed": {rel_path: reason},
"outputs": {rel_output: [width, height]}, "wall_s", "cpu_s"} (cpu_s counts the workers).
"""
import argparse
import json
import os
import time
from multiprocessing import Pool

import PIL
from PIL import Image, ImageFilter

EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_images(in_dir, recursive, out_dir):
    """Relative paths of the images, sorted; hidden files (our own temporary files) and OUT_DIR
    (when it lies inside IN_DIR) skipped."""
    found = []
    for root, dirs, files in os.walk(in_dir):
        keep = [d for d in dirs if os.path.abspath(os.path.join(root, d)) != out_dir]
        dirs[:] = keep if recursive else []
        found += [os.path.relpath(os.path.join(root, f), in_dir) for f in files
                  if not f.startswith(".") and f.lower().endswith(EXTENSIONS)]
    return sorted(found)


def output_name(rel, ext):
    """The Rust example's rule: keep the name if its extension is the output's, else append it."""
    return rel if rel.lower().endswith("." + ext) else f"{rel}.{ext}"


def make_thumbnail(job):
    """One task: runs in a worker process; everything it needs arrives pickled in `job`."""
    src, dst, opts = job
    try:
        with Image.open(src) as im:  # reads the header only
            if im.width * im.height > opts["max_pixels"]:
                raise ValueError(f"{im.width}x{im.height} is over the pixel limit")
            im.thumbnail(opts["size"], Image.Resampling.LANCZOS)
            if opts["grayscale"]:
                im = im.convert("L")
            if opts["format"] == "JPEG" and im.mode in ("RGBA", "LA", "P"):
                rgba = im.convert("RGBA")  # JPEG has no alpha: flatten onto white
                im = Image.new("RGB", rgba.size, "white")
                im.paste(rgba, mask=rgba.getchannel("A"))
            elif im.mode not in ("L", "RGB", "RGBA"):
                im = im.convert("RGB")  # CMYK, 16-bit, palette
            if opts["blur"]:
                im = im.filter(ImageFilter.GaussianBlur(opts["blur"]))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            part = os.path.join(os.path.dirname(dst), "." + os.path.basename(dst) + ".part")
            im.save(part, opts["format"], quality=opts["quality"])
            os.replace(part, dst)  # write then rename: no half-written thumbnail
            return im.width, im.height, None
    except Exception as e:  # one bad file must not stop the batch
        return None, None, f"{type(e).__name__}: {e}"


def parse_size(text):
    w, _, h = text.lower().partition("x")
    return int(w), int(h or w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--size", type=parse_size, default=(256, 256), help="256 or WxH")
    parser.add_argument("--format", choices=["jpeg", "png"], default="jpeg")
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--grayscale", action="store_true")
    parser.add_argument("--blur", type=float, default=0.0, help="Gaussian blur radius")
    parser.add_argument("--max-megapixels", type=float, default=100.0)
    parser.add_argument("--recursive", action="store_true")
    args = parser.parse_args()
    if args.workers < 1 or min(args.size) < 1:
        parser.error("--workers and --size must be at least 1")

    ext = "jpg" if args.format == "jpeg" else "png"
    opts = {"size": args.size, "format": args.format.upper(), "quality": args.quality,
            "grayscale": args.grayscale, "blur": args.blur,
            "max_pixels": int(args.max_megapixels * 1e6)}
    images = list_images(args.in_dir, args.recursive, os.path.abspath(args.out_dir))
    outputs = [output_name(rel, ext) for rel in images]
    jobs = [(os.path.join(args.in_dir, rel), os.path.join(args.out_dir, out), opts)
            for rel, out in zip(images, outputs)]

    t0, c0 = time.perf_counter(), os.times()
    with Pool(args.workers) as pool:
        # chunksize=1: an idle worker takes the next image (images differ in size).
        results = pool.map(make_thumbnail, jobs, chunksize=1)
    wall = time.perf_counter() - t0
    c1 = os.times()  # the workers were reaped when the pool closed: their CPU counts now
    cpu = sum(c1[:4]) - sum(c0[:4])

    done = {out: [w, h] for out, (w, h, err) in zip(outputs, results) if err is None}
    failed = {rel: err for rel, (_, _, err) in zip(images, results) if err is not None}
    print(json.dumps({"pillow": PIL.__version__, "workers": args.workers,
                      "images": len(images), "ok": len(done),
                      "failed": failed, "outputs": done, "wall_s": round(wall, 6),
                      "cpu_s": round(cpu, 6)}))


if __name__ == "__main__":
    main()
