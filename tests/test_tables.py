"""What each model accepts and what it costs: recraft_build.spec.tables."""

from __future__ import annotations

import pytest

from recraft_build.spec import tables
from recraft_build.domain import GenerationRequest


def test_every_model_id_of_the_reference_is_known():
    # recraft-api.md 1.5, V4-era list
    expected = {
        "recraftv4_1", "recraftv4_1_vector", "recraftv4_1_pro", "recraftv4_1_pro_vector",
        "recraftv4_1_utility", "recraftv4_1_utility_vector", "recraftv4_1_utility_pro",
        "recraftv4_1_utility_pro_vector", "recraftv4", "recraftv4_vector", "recraftv4_pro",
        "recraftv4_pro_vector", "recraftv3", "recraftv3_vector", "recraftv2", "recraftv2_vector",
    }
    # (the table also holds other makers' models since issue 13: FLUX through Replicate)
    assert {m for m, info in tables.MODELS.items() if info.maker == "recraft"} == expected
    assert tables.DEFAULT_MODEL == "recraftv3"


def test_v3_and_v2_sizes():
    assert len(tables.SIZES_V3) == 15
    assert "1707x1024" in tables.SIZES_V3 and "1820x1024" in tables.SIZES_V3
    assert tables.model_info("recraftv3").sizes == tables.model_info("recraftv2").sizes
    assert tables.size_for_aspect_ratio("recraftv3", "16:9") == "1820x1024"
    assert tables.size_for_aspect_ratio("recraftv4", "16:9") is None


def test_v4_sizes_and_pro_doubles_them():
    assert "1344x768" in tables.model_info("recraftv4").sizes
    assert "2688x1536" in tables.model_info("recraftv4_pro").sizes
    assert "1024x1024" not in tables.model_info("recraftv4_1_pro").sizes


def test_vector_models_take_aspect_ratios_only():
    for name, info in tables.MODELS.items():
        if name.endswith("_vector"):
            assert info.vector and info.sizes == ()
            assert "16:9" in info.aspect_ratios


def test_styles_per_model():
    v3, v2, v4 = (tables.model_info(m) for m in ("recraftv3", "recraftv2", "recraftv4"))
    assert "pixel_art" in v3.styles["digital_illustration"]
    assert "logo_raster" in v3.styles and "icon" not in v3.styles
    assert "icon" in v2.styles and "any" not in v2.styles
    assert "voxel" in v2.styles["digital_illustration"]
    assert "voxel" not in v3.styles["digital_illustration"]
    assert v3.styles["any"] == ()
    assert dict(v4.styles) == {}
    assert set(tables.model_info("recraftv3_vector").styles) == {"vector_illustration"}
    assert "pixel_art" in tables.ALL_SUBSTYLES and "pictogram" in tables.ALL_SUBSTYLES


def test_prompt_limits_and_feature_support():
    assert tables.model_info("recraftv3").prompt_max == 1000
    assert tables.model_info("recraftv4_1").prompt_max == 10000
    assert tables.model_info("recraftv3").text_layout
    assert not tables.model_info("recraftv2").text_layout
    assert tables.model_info("recraftv2").negative_prompt
    assert not tables.model_info("recraftv4").negative_prompt
    assert tables.model_info("recraftv4").controls == {"colors", "background_color"}


@pytest.mark.parametrize(
    "model, style, n, credits",
    [
        ("recraftv3", "digital_illustration", 1, 40),
        ("recraftv3", "digital_illustration", 3, 120),
        ("recraftv3", "vector_illustration", 2, 160),  # vector doubles
        ("recraftv2", "realistic_image", 1, 22),
        ("recraftv2", "icon", 1, 44),
        ("recraftv3_vector", None, 1, 80),
        ("recraftv4_1", None, 2, 70),
        ("recraftv4_1_pro", None, 1, 210),
        ("recraftv4_1_utility_pro", None, 1, 210),
    ],
)
def test_generation_credits(model, style, n, credits):
    assert tables.generation_credits(GenerationRequest(model=model, prompt="p", style=style, n=n)) \
        == credits


def test_generation_credits_vector_override_for_custom_vector_styles():
    request = GenerationRequest(model="recraftv3", prompt="p", style_ref="brand", n=2)
    assert tables.generation_credits(request) == 80
    assert tables.generation_credits(request, vector=True) == 160


def test_operation_credits():
    assert tables.operation_credits("remove_background") == 10
    assert tables.operation_credits("vectorize") == 10
    assert tables.operation_credits("crisp_upscale") == 4
    assert tables.operation_credits("creative_upscale") == 250
    assert tables.operation_credits("create_style") == 40
    assert tables.operation_credits("vectorize", model_family="placeholder") == 0
    with pytest.raises(ValueError, match="unknown operation"):
        tables.operation_credits("teleport")
    with pytest.raises(ValueError, match="family"):
        tables.operation_credits("vectorize", model_family="other")


def test_credits_to_usd():
    assert tables.credits_to_usd(40) == pytest.approx(0.04)
    assert tables.credits_to_usd(1000) == 1.0


# -- issue 13: FLUX through Replicate, and pictures made from pictures ---------------------------

def test_flux_models_are_in_the_table():
    pro, ultra, kontext = (tables.model_info(m) for m in ("flux-1.1-pro", "flux-1.1-pro-ultra", "flux-kontext-pro"))
    assert all(i.maker == "bfl" and i.sizes == () and dict(i.styles) == {} for i in (pro, ultra, kontext))
    assert "21:9" in ultra.aspect_ratios and "21:9" not in pro.aspect_ratios
    assert not pro.negative_prompt and not pro.controls and not pro.custom_styles
    assert set(kontext.image_operations) == {"image_to_image"} and not pro.image_operations
    assert "strength" not in kontext.image_operations["image_to_image"]


def test_every_model_maker_agrees_with_the_domain_rule():
    from recraft_build.domain import model_maker

    for name, info in tables.MODELS.items():
        assert model_maker(name) == info.maker


@pytest.mark.parametrize(
    "model, operation, style, n, credits",
    [
        ("recraftv3", "image_to_image", "digital_illustration", 2, 80),
        ("recraftv3", "inpaint", "vector_illustration", 1, 80),
        ("recraftv2", "replace_background", None, 1, 40),
        ("recraftv3", "variate", None, 3, 120),
        ("flux-kontext-max", "image_to_image", None, 2, 160),
        ("flux-1.1-pro", None, None, 1, 40),
        ("flux-1.1-pro-ultra", None, None, 2, 120),
        ("file", "file", None, 1, 0),
    ],
)
def test_credits_of_pictures_made_from_pictures(model, operation, style, n, credits):
    request = GenerationRequest(model=model, prompt="p", style=style, n=n, operation=operation)
    assert tables.generation_credits(request) == credits


def test_recraft_v2_v3_models_run_every_image_operation_v4_none():
    from recraft_build.domain import IMAGE_OPERATIONS

    assert set(tables.model_info("recraftv3").image_operations) == set(IMAGE_OPERATIONS)
    assert set(tables.model_info("recraftv2_vector").image_operations) == set(IMAGE_OPERATIONS)
    assert not tables.model_info("recraftv4").image_operations
    assert tables.model_info("recraftv3").needs_strength
