"""The step catalogue: recraft_build.steps.catalog."""

from __future__ import annotations

import pytest

from recraft_build.steps.catalog import STEP_NAMES, STEPS, provider_operation, scale_params


def test_step_names():
    assert STEP_NAMES == ("remove_background", "vectorize", "resize", "crop", "trim", "pad",
                          "upscale")


def test_kinds():
    assert STEPS["vectorize"].produces == "vector" and STEPS["vectorize"].needs_raster
    assert all(STEPS[n].produces == "raster" for n in STEP_NAMES if n != "vectorize")
    assert {n for n in STEP_NAMES if STEPS[n].needs_params} == {"resize", "crop", "pad"}
    assert STEPS["upscale"].provider_only


def test_provider_operations():
    assert provider_operation("remove_background") == "remove_background"
    assert provider_operation("vectorize", {"engine": "local"}) == "vectorize"
    assert provider_operation("upscale") == "crisp_upscale"
    assert provider_operation("upscale", {"mode": "creative"}) == "creative_upscale"
    assert provider_operation("resize", {"width": 3}) is None
    with pytest.raises(KeyError):
        provider_operation("teleport")


def test_scale_params_multiplies_geometry_only():
    assert scale_params("resize", {"width": 64, "height": 48, "fit": "cover"}, 2) == \
        {"width": 128, "height": 96, "fit": "cover"}
    assert scale_params("pad", {"width": 10, "height": 10, "margin": 3}, 1.5) == \
        {"width": 15, "height": 15, "margin": 5}
    assert scale_params("trim", {"margin": 8, "tolerance": 10}, 3) == {"margin": 24,
                                                                        "tolerance": 10}
    box = {"box": [10, 20, 30, 40]}
    assert scale_params("crop", box, 2) == box  # source pixels: not scaled
    assert scale_params("resize", {"width": 1}, 0.25) == {"width": 1}  # never below 1
    assert scale_params("trim", {"margin": 1}, 0.25) == {"margin": 0}


def test_scale_one_is_an_equal_copy():
    params = {"width": 64}
    out = scale_params("resize", params, 1)
    assert out == params and out is not params


def test_a_favicon_record_may_name_the_snippet_and_the_svg_icon():
    from recraft_build.steps.catalog import export_files_allowed

    assert export_files_allowed("favicon", ["favicon.ico", "favicon.html", "icon.svg", "site.webmanifest"])
    assert not export_files_allowed("favicon", ["favicon.ico", "index.html"])
