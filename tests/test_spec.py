"""Loading specs: recraft_build.spec.loader (defaults, matrices, templates, checks, domain objects)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from recraft_build.domain import Asset, Spec
from recraft_build.errors import SpecError, UsageError
from recraft_build.spec.loader import load_spec, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def spec_of(body: str, tmp_path: Path | None = None, **kw) -> Spec:
    text = textwrap.dedent(body)
    return parse_spec(text, "assets.yaml", base_dir=tmp_path or Path("/nonexistent"), **kw)


def errors_of(body: str, tmp_path: Path | None = None, **kw) -> list[str]:
    with pytest.raises(SpecError) as info:
        spec_of(body, tmp_path, **kw)
    return [str(p) for p in info.value.problems]


def one_error(body: str, tmp_path: Path | None = None, **kw) -> str:
    out = errors_of(body, tmp_path, **kw)
    assert len(out) == 1, out
    return out[0]


def by_name(spec: Spec) -> dict[str, Asset]:
    return {a.name: a for a in spec.assets}


MINIMAL = """\
version: 1
assets:
  - name: hero
    prompt: a harbor at dusk
    output: hero.png
"""


# -- the examples -------------------------------------------------------------------------

def test_game_icons_example():
    spec = load_spec(ROOT / "examples" / "game-icons" / "assets.yaml")
    assets = by_name(spec)
    assert list(assets) == ["icon-sword", "icon-shield", "icon-potion", "icon-bow", "icon-key",
                            "icon-scroll", "coin"]
    potion = assets["icon-potion"]
    assert potion.request.substyle == "pixel_art" and potion.request.n == 3
    assert "glowing red liquid" in potion.request.prompt
    assert "detail" not in assets["icon-sword"].request.prompt
    assert [s.name for s in potion.steps] == ["remove_background", "trim"]
    assert [(o.path, o.format) for o in potion.outputs] == [
        ("icons/potion.png", "png"), ("icons/potion@2x.png", "png"),
        ("icons/svg/potion.svg", "svg")]
    assert potion.outputs[1].steps[0].params["width"] == 128
    assert potion.matrix == {"item": "potion", "detail": "a round flask of glowing red liquid"}
    assert spec.output_dir == "build"
    assert spec.lock_path.name == "assets.lock"


def test_website_example():
    spec = load_spec(ROOT / "examples" / "website" / "assets.yaml")
    assets = by_name(spec)
    assert set(assets) == {"hero", "feature-itinerary", "feature-budget", "feature-sharing", "logo"}
    assert assets["hero"].outputs[0].options == {"quality": 82}
    logo = assets["logo"]
    assert logo.request.vector and logo.request.style == "vector_illustration"
    assert logo.request.controls == {"colors": ["#0b3d91", "#1fb5a8", "#f4f1de"],
                                     "no_text": True}
    favicon = logo.outputs[-1]
    assert (favicon.path, favicon.format, favicon.favicon) == ("favicon", "ico", True)


# -- defaults and fields ---------------------------------------------------------------------

def test_minimal_spec_uses_the_default_model():
    spec = spec_of(MINIMAL)
    (asset,) = spec.assets
    assert asset.request.model == "recraftv3"
    assert asset.request.prompt == "a harbor at dusk"
    assert asset.outputs[0].path == "hero.png" and asset.outputs[0].steps == ()
    assert asset.where is not None and (asset.where.line, asset.where.path) == (3, "assets[0]")


def test_spec_path_is_base_dir_and_file_name(tmp_path):
    spec = spec_of(MINIMAL, tmp_path)
    assert spec.path == tmp_path / "assets.yaml"
    assert spec.default_output_dir() == tmp_path / "build"


def test_defaults_merge_and_asset_wins():
    spec = spec_of("""\
        version: 1
        defaults:
          model: recraftv2
          style: digital_illustration
          substyle: pixel_art
          size: 1024x1024
          n: 2
          negative_prompt: blurry
          controls: {colors: ["#AABBCC"], background_color: "#FFFFFF", artistic_level: 2}
        assets:
          - name: a
            prompt: p
            output: a.png
          - name: b
            prompt: p
            n: 1
            aspect_ratio: "16:9"
            style: realistic_image
            negative_prompt: null
            controls: {no_text: true, artistic_level: 4}
            output: b.png
        """)
    a, b = spec.assets
    assert (a.request.model, a.request.style, a.request.substyle, a.request.size, a.request.n) \
        == ("recraftv2", "digital_illustration", "pixel_art", "1024x1024", 2)
    assert a.request.negative_prompt == "blurry"
    assert a.request.controls == {"colors": ["#aabbcc"], "background_color": "#ffffff",
                                  "artistic_level": 2}
    # size/aspect_ratio and style/substyle are replaced as a group; null removes a default.
    assert (b.request.size, b.request.aspect_ratio) == (None, "16:9")
    assert (b.request.style, b.request.substyle) == ("realistic_image", None)
    assert b.request.negative_prompt is None and b.request.n == 1
    assert b.request.controls == {"colors": ["#aabbcc"], "background_color": "#ffffff",
                                  "artistic_level": 4, "no_text": True}


def test_style_id_replaces_default_style():
    spec = spec_of("""\
        version: 1
        defaults: {style: digital_illustration, substyle: pixel_art}
        assets:
          - name: a
            prompt: p
            style_id: 0b5bd7ab-8c2c-4d7e-9c5e-2f0f7c3a9c11
            output: a.png
        """)
    r = spec.assets[0].request
    assert (r.style, r.substyle, r.style_id) == (None, None, "0b5bd7ab-8c2c-4d7e-9c5e-2f0f7c3a9c11")


def test_request_fields():
    spec = spec_of("""\
        version: 1
        assets:
          - name: a
            prompt: "  p  "
            seed: 42
            text_layout: [{text: SALE, bbox: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.3], [0.1, 0.3]]}]
            output: a.jpeg
        """)
    asset = spec.assets[0]
    assert asset.request.seed == 42 and asset.request.prompt == "p"
    assert asset.request.text_layout == ({"text": "SALE", "bbox": [[0.1, 0.1], [0.9, 0.1],
                                                                   [0.9, 0.3], [0.1, 0.3]]},)
    assert asset.outputs[0].format == "jpg"


def test_custom_style_becomes_style_ref(tmp_path):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a.png").write_bytes(b"\x89PNG fake")
    spec = spec_of("""\
        version: 1
        styles:
          brand: {style: digital_illustration, references: [refs/a.png], description: ours}
        assets:
          - name: a
            prompt: p
            style: brand
            output: a.png
        """, tmp_path)
    r = spec.assets[0].request
    assert (r.style, r.style_ref) == (None, "brand")
    style = spec.styles["brand"]
    assert (style.base_style, style.references) == ("digital_illustration", ("refs/a.png",))


def test_style_section_checks(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(outside)
    out = errors_of("""\
        version: 1
        styles:
          icon: {style: icon, references: [a.png]}
          mine:
            style: vector_illustration
            references: [missing.png, a.gif, ../x.png, /etc/passwd.png, link.png]
        assets: [{name: a, prompt: p, output: a.png}]
        """, tmp_path)
    text = "\n".join(out)
    assert "'icon' is a built-in style name" in text
    assert "reference picture not found: missing.png" in text
    assert "is not a png, jpg or webp picture" in text
    assert "contains '..'" in text
    assert "is absolute" in text
    assert "leaves the spec's folder" in text


def test_providers_section():
    spec = spec_of("""\
        version: 1
        providers:
          elk:
            protocol: recraft
            base_url: https://api.example.com/recraft/v1
            auth: raw
            token_env: ELK_TOKEN
            rate_limit: {requests_per_second: 2}
            timeout: 60
        assets: [{name: a, prompt: p, output: a.png}]
        """)
    p = spec.providers["elk"]
    assert (p.protocol, p.base_url, p.auth, p.token_env) == (
        "recraft", "https://api.example.com/recraft/v1", "raw", "ELK_TOKEN")
    assert p.options == {"rate_limit": {"requests_per_second": 2}, "timeout": 60}


def test_a_spec_cannot_redefine_a_built_in_provider():
    p = one_error("""\
        version: 1
        providers:
          recraft: {protocol: recraft, base_url: "https://evil.example.com", token_env: RECRAFT_API_TOKEN}
        assets: [{name: a, prompt: p, output: a.png}]
        """)
    assert p.startswith("assets.yaml:3:3: providers.recraft: 'recraft' is a built-in provider name")


# -- matrix and templates ---------------------------------------------------------------------

def test_matrix_expansion_and_template_context():
    spec = spec_of("""\
        version: 1
        vars: {world: a village, tier: vars-tier}
        defaults: {style: digital_illustration}
        assets:
          - name: "{{ item }}-{{ tier }}"
            matrix:
              item: [sword, shield]
              tier: [1, 2]
              exclude: [{item: shield, tier: 2}]
              include: [{item: sword, glow: true}]
            prompt: "{{ item }} t{{ tier }} in {{ world }} ({{ style }}, {{ model }}, {{ name }}){% if glow is defined %} glowing{% endif %}"
            output: "icons/{{ name }}.png"
        """)
    assert [a.name for a in spec.assets] == ["sword-1", "sword-2", "shield-1"]
    first = spec.assets[0]
    assert first.request.prompt == \
        "sword t1 in a village (digital_illustration, recraftv3, sword-1) glowing"
    assert first.outputs[0].path == "icons/sword-1.png"
    assert first.matrix == {"item": "sword", "tier": 1, "glow": True}
    assert spec.assets[2].request.prompt.endswith("(digital_illustration, recraftv3, shield-1)")


def test_scales_expand_outputs_with_scaled_geometry():
    spec = spec_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            outputs:
              - path: icons/a.png
                scales: [1, 1.5, 2]
                steps:
                  - {crop: {box: [10, 10, 500, 500]}}
                  - {resize: {width: 64, height: 48}}
                  - {pad: {margin: 3}}
        """)
    outs = spec.assets[0].outputs
    assert [o.path for o in outs] == ["icons/a.png", "icons/a@1.5x.png", "icons/a@2x.png"]
    assert [dict(o.steps[1].params) for o in outs] == [
        {"width": 64, "height": 48}, {"width": 96, "height": 72}, {"width": 128, "height": 96}]
    assert [o.steps[2].params["margin"] for o in outs] == [3, 5, 6]
    assert all(o.steps[0].params["box"] == [10, 10, 500, 500] for o in outs)
    assert all(o.scales == () for o in outs)


def test_step_specs_keep_params_as_written_and_their_place():
    spec = spec_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            steps:
              - remove_background
              - trim:
              - vectorize: {color_mode: binary}
            output: a.svg
        """)
    steps = spec.assets[0].steps
    assert [(s.name, dict(s.params)) for s in steps] == [
        ("remove_background", {}), ("trim", {}), ("vectorize", {"color_mode": "binary"})]
    assert steps[2].where is not None and steps[2].where.path == "assets[0].steps[2]"
    assert steps[2].where.line == 8


def test_output_options_as_written():
    spec = spec_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            outputs:
              - {path: a.webp, quality: 80, lossless: false, strip_metadata: false}
              - {path: a.png, optimize: 4}
        """)
    webp, png = spec.assets[0].outputs
    assert webp.options == {"quality": 80, "lossless": False, "strip_metadata": False}
    assert png.options == {"optimize": 4}


# -- problems ---------------------------------------------------------------------------------

FIVE_MISTAKES = """\
version: 1
defaults:
  model: recraftv3
assets:
  - name: hero
    promt: a harbor at dusk
    prompt: a harbor at dusk
    n: 7
    controls:
      colors: ["#12345"]
    output: ../hero.png
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield]}
    prompt: "icon of a {{ itme }}"
    output: "icons/{{ item }}.png"
"""


def test_five_mistakes_are_all_reported_with_file_line_col(tmp_path):
    spec_file = tmp_path / "assets.yaml"
    spec_file.write_text(FIVE_MISTAKES)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    lines = str(info.value).splitlines()
    f = str(spec_file)
    assert lines == [
        f"{f}:6:5: assets[0].promt: unknown key 'promt' (did you mean 'prompt'?)",
        f"{f}:8:8: assets[0].n: 7 is too large: n must be at most 6",
        f"{f}:10:16: assets[0].controls.colors[0]: '#12345' is not a color like #ff8800",
        f"{f}:11:13: assets[0].output: output path '../hero.png' contains '..' "
        "(outputs may not leave the output folder)",
        f"{f}:14:13: assets[1].prompt: undefined template variable 'itme' "
        "(asset 'icon-sword' and 1 more) (did you mean 'item'?)",
    ]
    assert info.value.exit_code == 3


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_spec(tmp_path / "assets.yaml")


def test_empty_and_non_mapping_specs():
    assert "the spec is empty" in one_error("# nothing\n")
    assert "expected a mapping, got a list" in one_error("- a\n- b\n")
    assert "missing required key 'assets'" in one_error("version: 1\n")


@pytest.mark.parametrize(
    "fields, expected",
    [
        ("model: recraftv4\n    style: digital_illustration",
         "assets[0].style: model recraftv4 takes no style"),
        ("style: icon", "style 'icon' is not available for recraftv3 (styles for recraftv3:"),
        ("style: digital_ilustration", "unknown style 'digital_ilustration' (did you mean "
                                       "'digital_illustration'?)"),
        ("style: vector_illustration\n    substyle: pixel_art",
         "substyle 'pixel_art' is not available for style vector_illustration on recraftv3"),
        ("style: any\n    substyle: pixel_art", "any has no substyles"),
        ("substyle: pixel_art", "assets[0].substyle: substyle needs a style"),
        ("style: icon\n    style_id: 0b5bd7ab-8c2c-4d7e-9c5e-2f0f7c3a9c11",
         "assets[0].style_id: give style or style_id, not both"),
        ("size: 1024x1024\n    aspect_ratio: '1:1'", "give size or aspect_ratio, not both"),
        ("size: 1344x768", "size 1344x768 is not available for recraftv3"),
        ("model: recraftv4_vector\n    size: 1024x1024", "recraftv4_vector takes aspect_ratio, not size"),
        ("aspect_ratio: '7:5'", "aspect ratio 7:5 is not available for recraftv3"),
        ("model: recraftv4\n    negative_prompt: blur", "recraftv4 does not take negative_prompt"),
        ("model: recraftv2\n    text_layout: [{text: A, bbox: [[0,0],[1,0],[1,1],[0,1]]}]",
         "recraftv2 does not take text_layout"),
        ("model: recraftv4_1\n    controls: {artistic_level: 3}",
         "recraftv4_1 does not take controls.artistic_level"),
        ("model: recraftv4\n    style_id: 0b5bd7ab-8c2c-4d7e-9c5e-2f0f7c3a9c11",
         "recraftv4 does not take style_id"),
        ("prompt: '" + "x" * 1001 + "'", "the prompt is 1,001 characters; recraftv3 takes at most 1,000"),
        ("prompt: '  '", "the prompt renders empty"),
    ],
)
def test_generation_checks(fields, expected):
    body = f"version: 1\nassets:\n  - name: a\n    prompt: p\n    {fields}\n    output: a.png\n"
    if fields.startswith("prompt:"):
        body = body.replace("    prompt: p\n", "", 1)
    assert expected in one_error(body)


def test_v4_takes_long_prompts():
    spec = spec_of("version: 1\nassets:\n  - {name: a, model: recraftv4, prompt: '" + "x" * 5000
                   + "', output: a.png}\n")
    assert len(spec.assets[0].request.prompt) == 5000


def test_problem_from_defaults_names_the_asset():
    p = one_error("""\
        version: 1
        defaults: {style: digital_illustration}
        assets:
          - {name: ok, prompt: p, output: a.png}
          - {name: modern, model: recraftv4, prompt: p, output: b.png}
        """)
    assert p.startswith("assets.yaml:2:19: defaults.style: model recraftv4 takes no style "
                        "(asset 'modern')")


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/abs/a.png", "is absolute"),
        ("C:/a.png", "is absolute"),
        ("a/../../b.png", "contains '..'"),
        ("a\\\\b.png", "contains a backslash"),
        ("a//b.png", "has an empty folder name"),
        ("./a.png", "contains a '.' folder"),
        ("a?.png", "not allowed in file names"),
        ("a.gif", "has extension '.gif'"),
        ("icons/a", "has no extension"),
        ("icons/.png", "has no file name"),
        ("", "must not be empty"),
    ],
)
def test_bad_output_paths(path, expected):
    assert expected in one_error(f'version: 1\nassets:\n  - {{name: a, prompt: p, output: "{path}"}}\n')


def test_rendered_output_path_is_checked():
    p = one_error('version: 1\nvars: {up: ".."}\nassets:\n  - {name: a, prompt: p, output: "{{ up }}/a.png"}\n')
    assert "output path '../a.png' contains '..'" in p


def test_duplicate_names_name_both_places():
    p = one_error("""\
        version: 1
        assets:
          - {name: a, prompt: p, output: a.png}
          - {name: a, prompt: q, output: b.png}
        """)
    assert p == ("assets.yaml:4:12: assets[1].name: asset name 'a' is already used by assets[0] "
                 "(line 3) (asset names must be unique)")


def test_matrix_without_a_variable_in_the_name():
    out = errors_of("""\
        version: 1
        assets:
          - name: icon
            matrix: {item: [a, b, c]}
            prompt: "{{ item }}"
            output: "{{ item }}.png"
        """)
    assert len(out) == 1 and "matrix combinations give the same asset name 'icon'" in out[0]
    assert 'name: "icon-{{ item }}"' in out[0]


def test_output_collisions_name_both_assets():
    out = errors_of("""\
        version: 1
        assets:
          - {name: a, prompt: p, output: icons/x.png}
          - {name: b, prompt: p, outputs: [{path: icons/X.png}, {path: icons/x.png/y.png}]}
        """)
    text = "\n".join(out)
    assert "assets[1].outputs[0]: output 'icons/X.png' is also written by asset 'a' " \
           "(assets[0].output, line 3) (the paths differ only in case)" in text
    assert "output 'icons/x.png/y.png' is inside 'icons/x.png', which asset 'a' writes" in text


def test_matrix_output_collision_hints_at_a_variable():
    p = one_error("""\
        version: 1
        assets:
          - name: "i-{{ n }}"
            matrix: {n: [1, 2, 3]}
            prompt: p
            output: same.png
        """)
    assert "(asset 'i-2' and 1 more)" in p and "use a matrix variable in the path" in p


def test_raster_into_svg_needs_vectorize():
    p = one_error("version: 1\nassets:\n  - {name: a, prompt: p, output: a.svg}\n")
    assert "the picture is raster but this output is .svg" in p
    assert "add a vectorize step" in p


def test_vector_picture_into_svg_and_png_is_fine():
    spec = spec_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            model: recraftv4_vector
            outputs: [{path: a.svg}, {path: a.png, steps: [{resize: {width: 64}}]}]
        """)
    assert [o.format for o in spec.assets[0].outputs] == ["svg", "png"]


def test_vectorize_on_vector_is_an_error_at_asset_and_output_level():
    out = errors_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            style: vector_illustration
            steps: [vectorize]
            outputs: [{path: a.svg, steps: [vectorize]}]
        """)
    assert len(out) == 2
    assert all("vectorize needs a raster picture" in p for p in out)


def test_output_option_checks():
    out = errors_of("""\
        version: 1
        assets:
          - name: a
            prompt: p
            outputs:
              - {path: a.png, quality: 80}
              - {path: b.jpg, lossless: true}
              - {path: d.png, scales: [1, 2]}
              - {path: fav/, favicon: true, scales: [1, 2]}
        """)
    text = "\n".join(out)
    assert "quality applies to webp and jpg outputs, not png" in text
    assert "lossless applies to webp outputs, not jpg" in text
    assert "scales need a resize step in this output" in text
    assert "a favicon output cannot have scales" in text


def test_reserved_variable_names():
    out = errors_of("""\
        version: 1
        vars: {size: big}
        assets:
          - name: "a-{{ model_name }}"
            matrix: {style: [x], model_name: [m]}
            prompt: p
            output: "{{ model_name }}.png"
        """)
    assert any("vars.size: 'size' cannot be a variable" in p for p in out)
    assert any("assets[0].matrix.style: 'style' cannot be a matrix key" in p for p in out)


def test_exclude_with_unknown_key():
    p = one_error("""\
        version: 1
        assets:
          - name: "a-{{ item }}"
            matrix: {item: [1, 2], exclude: [{itme: 1}]}
            prompt: p
            output: "{{ item }}.png"
        """)
    assert "assets[0].matrix.exclude[0].itme: exclude names 'itme', which is not a matrix key" in p


def test_matrix_over_the_limit_is_refused_before_expanding():
    keys = "\n".join(f"      k{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" for i in range(12))
    p = one_error(f"""\
version: 1
assets:
  - name: a
    prompt: p
    output: a.png
    matrix:
{keys}
""")
    assert "would expand to 1,000,000,000,000 assets, over the limit of 100,000" in p


def test_max_assets_counts_all_assets_together():
    body = """\
        version: 1
        assets:
          - {name: "a{{ i }}", matrix: {i: [1, 2, 3]}, prompt: p, output: "a{{ i }}.png"}
          - {name: "b{{ i }}", matrix: {i: [1, 2, 3]}, prompt: p, output: "b{{ i }}.png"}
        """
    assert len(spec_of(body, max_assets=6).assets) == 6
    assert "would expand to 6 assets, over the limit of 5" in one_error(body, max_assets=5)


def test_name_with_glob_characters_is_refused():
    assert "contains a control character or one of * ? [ ]" in one_error(
        "version: 1\nassets:\n  - {name: 'a*', prompt: p, output: a.png}\n")


def test_template_error_in_the_name_names_the_combination():
    p = one_error("""\
        version: 1
        assets:
          - name: "icon-{{ itme }}"
            matrix: {item: [sword]}
            prompt: p
            output: a.png
        """)
    assert "undefined template variable 'itme' (matrix item=sword)" in p


def test_alias_bomb_through_the_spec_loader():
    lines = ["version: 1", "x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
    for i in range(1, 9):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    p = one_error("\n".join(lines) + "\n")
    assert "alias" in p


def test_schema_problems_do_not_hide_problems_elsewhere():
    out = errors_of("""\
        version: 1
        assets:
          - {name: a, prompt: p, output: a.png, n: 0}
          - {name: b, prompt: p, output: ../b.png}
        """)
    assert len(out) == 2


@pytest.mark.parametrize("bad", ["/tmp/out", "../out", "a/../../out", "C:/out", "a\\\\b"])
def test_output_dir_stays_beside_the_spec(tmp_path, bad):
    """A spec from a pull request cannot send the pictures outside its own folder."""
    from recraft_build.errors import SpecError
    from recraft_build.spec.loader import parse_spec

    text = f'version: 1\noutput_dir: "{bad}"\nassets:\n  - name: a\n    prompt: p\n    output: a.png\n'
    with pytest.raises(SpecError) as err:
        parse_spec(text, "assets.yaml", base_dir=tmp_path)
    [problem] = err.value.problems
    assert problem.path == "output_dir" and problem.line == 2 and "-o" in problem.hint


@pytest.mark.parametrize("good", ["build", "out/art", "./", "dist/", "./build"])
def test_output_dir_inside_the_spec_folder_is_fine(tmp_path, good):
    from recraft_build.spec.loader import parse_spec

    text = f'version: 1\noutput_dir: "{good}"\nassets:\n  - name: a\n    prompt: p\n    output: a.png\n'
    assert parse_spec(text, "assets.yaml", base_dir=tmp_path).output_dir == good


# -- hostile specs stay cheap (issue 12) ----------------------------------------------------

def test_too_many_asset_entries_are_refused_before_they_are_checked():
    """Counted before the schema: checking 200,000 broken entries took a minute."""
    text = "version: 1\nassets:\n" + "- {}\n" * 101
    p = one_error(text, max_assets=100)
    assert p.startswith("assets.yaml:3:1: assets: ") and "lists 101 assets" in p
    assert "over the limit of 100" in p


def test_schema_validation_stops_after_a_thousand_problems():
    from recraft_build.spec.loader import MAX_PROBLEMS

    out = errors_of("version: 1\nassets:\n" + "- {}\n" * 600)  # 1,800 problems
    assert MAX_PROBLEMS <= len(out) <= MAX_PROBLEMS + 3
    assert any(f"validation stopped after the first {MAX_PROBLEMS:,} problems" in p
               for p in out)


@pytest.mark.timeout(60)
def test_a_refused_template_names_the_asset_and_the_field():
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    out = errors_of(f"""\
        version: 1
        assets:
          - name: hero
            prompt: "{loops}"
            output: hero.png
          - name: "icon-{{{{ item }}}}"
            matrix: {{item: [sword, shield]}}
            prompt: p
            output: "{{{{ 'a' | center(3 * 10**9) }}}}.png"
        """)
    assert len(out) == 2
    assert out[0].startswith("assets.yaml:4:13: assets[0].prompt: template refused")
    assert "steps" in out[0] and "(asset 'hero')" in out[0]
    assert out[1].startswith("assets.yaml:9:13: assets[1].output: template refused")
    assert "size limit" in out[1] and "(asset 'icon-sword' and 1 more)" in out[1]


def test_template_problems_name_a_plain_asset_too():
    p = one_error("version: 1\nassets:\n  - {name: hero, prompt: '{{ nope }}', output: a.png}\n")
    assert "undefined template variable 'nope' (asset 'hero')" in p


@pytest.mark.parametrize("path", [".rbtmp-x.png", "icons/.rbtmp-1.png", ".rbtmp-dir/x.png",
                                  "a/.rbtmp-/b.svg"])
def test_output_names_starting_rbtmp_are_reserved(path):
    p = one_error(f'version: 1\nassets:\n  - {{name: a, prompt: p, output: "{path}"}}\n')
    assert "'.rbtmp-'" in p and "temporary files" in p


def test_the_reserved_prefix_is_the_one_the_output_writer_uses():
    from recraft_build.engine.outputs import TEMP_PREFIX
    from recraft_build.spec.outputs import RESERVED_PREFIX

    assert RESERVED_PREFIX == TEMP_PREFIX == ".rbtmp-"


@pytest.mark.parametrize("path", ["CON.png", "aux.png", "NUL.png", "com1.png", "LPT9.png",
                                  "con/x.png", "icons/Prn.tar.png", "COM\u00b9.webp",
                                  "nul .png", "a/lpt0/b/c.svg"])
def test_windows_device_names_are_refused_in_any_segment(path):
    p = one_error(f'version: 1\nassets:\n  - {{name: a, prompt: p, output: "{path}"}}\n')
    assert "device name on Windows" in p and "rename it" in p


@pytest.mark.parametrize("path", ["console.png", "icons/con-1.png", "auxiliary/x.png",
                                  "com10.png", "lpt.png", "nul_icon.webp"])
def test_names_that_only_look_like_devices_are_fine(path):
    assert spec_of(f'version: 1\nassets:\n  - {{name: a, prompt: p, output: "{path}"}}\n')


def test_device_names_from_a_matrix_are_refused_per_combination():
    p = one_error("""\
        version: 1
        assets:
          - name: "icon-{{ item }}"
            matrix: {item: [sword, con]}
            prompt: p
            output: "{{ item }}.png"
        """)
    assert "output path 'con.png' uses 'con.png'" in p and "(asset 'icon-con')" in p


def test_paths_equal_after_unicode_normalisation_collide():
    composed, decomposed = "caf\u00e9.png", "cafe\u0301.png"
    out = errors_of(f"""\
        version: 1
        assets:
          - {{name: a, prompt: p, output: "{composed}"}}
          - {{name: b, prompt: p, output: "{decomposed}"}}
          - {{name: c, prompt: p, output: "CAFE\u0301.png"}}
        """)
    assert len(out) == 2
    assert f"output '{decomposed}' is also written by asset 'a'" in out[0]
    assert "differ only in Unicode normalisation" in out[0]
    assert "differ only in case and Unicode normalisation" in out[1]


def test_a_folder_and_a_file_equal_after_normalisation_collide():
    p = one_error("""\
        version: 1
        assets:
          - {name: a, prompt: p, output: "Caf\u00e9.png"}
          - {name: b, prompt: p, output: "cafe\u0301.png/x.png"}
        """)
    assert "is inside" in p


# -- values from templates --------------------------------------------------------------------

PALETTES = """\
version: 1
vars:
  brand: {background: "#FFFFFF", words: [{text: SALE, bbox: [[0, 0], [1, 0], [1, 1], [0, 1]]}]}
defaults:
  controls: {background_color: "{{ brand.background }}"}
assets:
  - name: "icon-{{ theme.name }}"
    matrix:
      theme:
        - {name: dusk, colors: ["#2B2D42", "#ef233c"], seed: 7, n: 2}
        - {name: dawn, colors: ["#ffd166", "#06d6a0"], seed: 8, n: 1}
    prompt: "an icon in {{ theme.name }} colours"
    seed: "{{ theme.seed }}"
    n: "{{ theme.n }}"
    text_layout: "{{ brand.words }}"
    controls: {colors: "{{ theme.colors }}"}
    output: "icons/{{ theme.name }}.png"
"""


def test_a_matrix_palette_feeds_controls_colors():
    assets = by_name(spec_of(PALETTES))
    dusk, dawn = assets["icon-dusk"].request, assets["icon-dawn"].request
    assert dusk.controls == {"colors": ["#2b2d42", "#ef233c"], "background_color": "#ffffff"}
    assert dawn.controls["colors"] == ["#ffd166", "#06d6a0"]
    assert (dusk.seed, dusk.n, dawn.seed, dawn.n) == (7, 2, 8, 1)
    assert dusk.text_layout == ({"text": "SALE", "bbox": [[0, 0], [1, 0], [1, 1], [0, 1]]},)


def test_a_value_from_a_template_makes_the_same_request_as_the_written_value():
    written = spec_of("""\
        version: 1
        assets:
          - name: icon-dusk
            prompt: an icon in dusk colours
            seed: 7
            n: 2
            text_layout: [{text: SALE, bbox: [[0, 0], [1, 0], [1, 1], [0, 1]]}]
            controls: {colors: ["#2b2d42", "#EF233C"], background_color: "#ffffff"}
            output: icons/dusk.png
        """)
    assert by_name(spec_of(PALETTES))["icon-dusk"].request == written.assets[0].request


def test_a_value_from_a_template_is_checked_like_a_written_one():
    out = errors_of("""\
        version: 1
        vars: {palettes: {warm: ["#ff8800", "red"], text: "#000000"}}
        assets:
          - name: "a-{{ p }}"
            matrix: {p: [warm, text]}
            prompt: p
            n: "{{ 2 * 5 }}"
            controls: {colors: "{{ palettes[p] }}"}
            output: "{{ p }}.png"
        """)
    text = "\n".join(out)
    assert ("assets.yaml:7:8: assets[0].n: the template gives 10: 10 is too large: n must be "
            "at most 6 (asset 'a-warm' and 1 more)") in text
    assert ("assets[0].controls.colors[1]: the template gives ['#ff8800', 'red']: 'red' is not "
            "a color like #ff8800 (asset 'a-warm')") in text
    assert "assets[0].controls.colors: the template gives '#000000': expected a list, got a " \
           "string (asset 'a-text')" in text


def test_a_value_template_in_defaults_is_reported_there_naming_the_asset():
    p = one_error("""\
        version: 1
        vars: {bg: white}
        defaults: {controls: {background_color: "{{ bg }}"}}
        assets:
          - {name: hero, prompt: p, output: hero.png}
        """)
    assert p.startswith("assets.yaml:3:41: defaults.controls.background_color: the template "
                        "gives 'white': 'white' is not a color like #ff8800 (asset 'hero')")


def test_a_string_that_is_not_a_template_is_still_the_wrong_type():
    p = one_error('version: 1\nassets:\n  - {name: a, prompt: p, output: a.png, '
                  'controls: {colors: "#ffffff"}}\n')
    assert p.endswith("assets[0].controls.colors: expected a list, got a string")


def test_the_docs_example_of_values_from_templates_loads():
    text = (ROOT / "docs" / "spec.md").read_text("utf-8")
    section = text.split("### Values from templates", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = spec_of("version: 1\n" + example)
    dusk = by_name(spec)["banner-dusk"].request
    assert dusk.controls == {"colors": ["#2b2d42", "#ef233c"], "background_color": "#ffffff"}
    assert dusk.seed == 7


# -- tags, favicon options, atlases and the manifest section ----------------------------------

def test_tags_are_templates_kept_in_order_without_duplicates():
    spec = spec_of("""\
        version: 1
        assets:
          - name: "enemy-{{ kind }}"
            matrix: {kind: [goblin, slime]}
            tags: [enemy, "kind-{{ kind }}", kind-goblin]
            prompt: "a {{ kind }}"
            output: "e/{{ kind }}.png"
        """)
    assert by_name(spec)["enemy-goblin"].tags == ("enemy", "kind-goblin")  # once, though rendered twice
    assert by_name(spec)["enemy-slime"].tags == ("enemy", "kind-slime", "kind-goblin")
    assert "tags" in one_error("""\
        version: 1
        assets:
          - {name: a, prompt: p, output: a.png, tags: enemy}
        """)


def test_favicon_options_and_their_default_url():
    spec = spec_of("""\
        version: 1
        assets:
          - name: logo
            prompt: p
            outputs:
              - {path: brand/fav/, favicon: true, webmanifest: {name: Tide, theme_color: "#0B3D91"}}
              - {path: other/, favicon: true, url: "https://cdn.example/fav/"}
        """)
    fav, other = spec.assets[0].outputs
    assert fav.options == {"webmanifest": {"name": "Tide", "theme_color": "#0B3D91"}, "url": "/brand/fav/"}
    assert other.options["url"] == "https://cdn.example/fav/"
    assert "webmanifest applies to favicon outputs only" in one_error("""\
        version: 1
        assets:
          - {name: a, prompt: p, outputs: [{path: a.png, webmanifest: {name: x}}]}
        """)
    assert "a URL without spaces, quotes, < or >" in one_error("""\
        version: 1
        assets:
          - {name: a, prompt: p, outputs: [{path: f/, favicon: true, url: '"><script>'}]}
        """)


def test_atlases_resolve_frames_and_scales():
    spec = spec_of("""\
        version: 1
        atlases:
          - {path: sprites/all, from: ["icon-*", coin], padding: 0, trim: true}
        assets:
          - name: "icon-{{ item }}"
            matrix: {item: [sword, shield]}
            prompt: "{{ item }}"
            outputs:
              - {path: "i/{{ item }}.webp", scales: [1, 2], steps: [{resize: {width: 32}}]}
              - {path: "i/{{ item }}.png", scales: [1, 2], steps: [{resize: {width: 32}}]}
          - name: coin
            prompt: coin
            outputs:
              - {path: c.png, scales: [1, 2, 4], steps: [{resize: {width: 16}}]}
        """)
    (atlas,) = spec.atlases
    assert [f.name for f in atlas.frames] == ["icon-sword", "icon-shield", "coin"]
    assert atlas.frames[0].files == {1: "i/sword.png", 2: "i/sword@2x.png"}  # png wins over webp
    assert atlas.scales == (1.0, 2.0)  # the scales every frame has
    assert (atlas.padding, atlas.trim, atlas.max_size, atlas.format) == (0, True, 2048, "hash")


def test_the_manifest_section():
    spec = spec_of("""\
        version: 1
        manifest: {hashed_names: true, typescript: web/src/assets.ts, public_path: /static/}
        assets:
          - {name: a, prompt: p, output: a.png}
        """)
    assert (spec.manifest.hashed_names, spec.manifest.typescript, spec.manifest.public_path) == (
        True, "web/src/assets.ts", "/static/")
    assert spec_of(MINIMAL).manifest.typescript is None and spec_of(MINIMAL).atlases == ()
