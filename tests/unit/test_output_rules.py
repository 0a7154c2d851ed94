"""Output rules: parsing and validation by index, first match, the fingerprint, the env form."""

from __future__ import annotations

import json

import pytest

from image_pipeline import output_rules
from image_pipeline.formats import Box, parse_size, parse_sizes
from image_pipeline.output_rules import Rules, parse_rules
from image_pipeline.settings import Settings, SettingsError

REQUIRED = {
    "GOOGLE_CLOUD_PROJECT": "p",
    "UPLOADS_BUCKET": "up",
    "THUMBNAILS_BUCKET": "th",
    "IMAGE_EVENTS_TOPIC": "t",
}
RULES = [
    {"name": "avatars", "include": ["avatars/**"], "sizes": ["64x64:cover", "256x256:cover"]},
    {
        "name": "products",
        "include": ["products/**"],
        "exclude": ["products/raw/**"],
        "sizes": ["256x256", "512x512", "1024x1024"],
        "formats": ["webp", "png"],
    },
]


def settings(**env: str) -> Settings:
    return Settings.from_env(REQUIRED | env)


def test_size_notation_names_the_fit_mode():
    assert parse_size("256x256:cover") == Box(256, 256, "cover")
    assert parse_size("512x384") == Box(512, 384, "inside") == Box(512, 384)
    assert parse_size(" 64X64:Cover ") == Box(64, 64, "cover")
    assert [str(b) for b in parse_sizes("64x64:cover,128x128")] == ["64x64:cover", "128x128"]
    assert [b.leaf for b in parse_sizes("64x64:cover,128x128")] == ["64x64-c", "128x128"]
    # The same box in both modes is two outputs; the same size twice is refused.
    assert len(parse_sizes("64x64,64x64:cover")) == 2
    with pytest.raises(ValueError, match="twice"):
        parse_sizes("64x64:cover,64x64:cover")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("64x64:fill", "unknown fit mode 'fill'"),
        ("10000x10:cover", "1..9999"),
        ("100000x10", "1..99999"),
        ("64x64:", "is not WIDTHxHEIGHT"),
    ],
)
def test_bad_sizes_say_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_size(text)


def test_the_first_rule_that_selects_a_name_applies_and_no_match_gets_the_defaults():
    s = settings(OUTPUT_RULES=json.dumps(RULES), THUMBNAIL_FORMATS="jpeg")
    avatar = s.outputs.outputs_for("avatars/u1/me.jpg")
    assert (avatar.rule, avatar.sizes, avatar.formats) == (
        "avatars",
        (Box(64, 64, "cover"), Box(256, 256, "cover")),
        ("jpeg",),  # formats left out: the deployment's
    )
    product = s.outputs.outputs_for("products/shoe.png")
    assert product.rule == "products" and product.formats == ("webp", "png")
    assert len(product.sizes) == 3
    for name in ("products/raw/shoe.png", "other/x.jpg"):
        fallback = s.outputs.outputs_for(name)
        assert (fallback.rule, fallback.sizes, fallback.formats) == (
            None,
            s.thumbnail_sizes,
            ("jpeg",),
        )


def test_no_rules_is_the_current_settings():
    s = settings()
    assert not s.output_rules
    outputs = s.outputs.outputs_for("anything.jpg")
    assert (outputs.rule, outputs.sizes, outputs.formats) == (
        None,
        s.thumbnail_sizes,
        s.thumbnail_formats,
    )


def test_rules_round_trip_through_the_environment_resolved():
    s = settings(OUTPUT_RULES=json.dumps(RULES))
    env = s.to_env()
    assert Settings.from_env(env) == s
    written = json.loads(env["OUTPUT_RULES"])
    assert written[0]["formats"] == ["webp"]  # stated for the function, not left implicit
    assert written[0]["sizes"] == ["64x64:cover", "256x256:cover"]


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ([{"include": ["a/**"], "sizes": ["64x64:fill"]}], "rule 0: .*unknown fit mode"),
        ([RULES[0], {"include": "b/**", "formats": ["gif"]}], "rule 1: unknown format 'gif'"),
        ([RULES[0], {"include": ["b"], "sizes": []}], "rule 1: sizes: empty"),
        ([{"includes": ["a/**"]}], "rule 0: unknown key 'includes'"),
        ([RULES[0], RULES[0]], "rule 1: name 'avatars' is already rule 0's"),
        ([{"name": "all"}, RULES[0]], "rule 1: is never used: rule 0 before it selects every"),
        ([{"name": "Bad Name"}], "rule 0: name 'Bad Name'"),
        (["avatars/**"], "rule 0: 'avatars/\\*\\*' is not an object"),
        ({"include": []}, "is not a list of rules"),
        ("[{", "not a JSON list of rules"),
    ],
)
def test_an_invalid_rule_is_refused_with_its_index(rules, problem):
    raw = rules if isinstance(rules, str) else json.dumps(rules)
    with pytest.raises(SettingsError, match=problem) as caught:
        settings(OUTPUT_RULES=raw)
    assert caught.value.variable == "OUTPUT_RULES"
    assert "\n" not in str(caught.value)


def test_rules_too_large_for_an_environment_variable_are_refused():
    many = [
        {"name": f"r{i}", "include": [f"{'x' * 200}/{i}/**"], "sizes": ["64x64"]}
        for i in range(output_rules.MAX_RULES)
    ]
    with pytest.raises(ValueError, match="over the 16384 bytes"):
        parse_rules(many)


def test_fingerprint_follows_what_shapes_the_outputs_and_nothing_else():
    base = settings()
    assert len(base.outputs.fingerprint) == 16
    assert settings().outputs.fingerprint == base.outputs.fingerprint  # stable
    same = settings(MAX_INPUT_BYTES="1000", IMAGES_COLLECTION="other")
    assert same.outputs.fingerprint == base.outputs.fingerprint
    for change in (
        {"OUTPUT_RULES": json.dumps(RULES)},
        {"THUMBNAIL_SIZES": "128x128:cover"},
        {"THUMBNAIL_FORMATS": "png"},
        {"THUMBNAIL_QUALITY": "60"},
        {"COVER_FOCUS": "detail"},
        {"METADATA_KEYS": "owner"},
    ):
        assert settings(**change).outputs.fingerprint != base.outputs.fingerprint, change


def test_a_rule_that_states_the_defaults_has_the_fingerprint_of_one_that_omits_them():
    omitted = settings(OUTPUT_RULES=json.dumps([{"include": ["a/**"]}]))
    stated = settings(
        OUTPUT_RULES=json.dumps(
            [
                {
                    "include": ["a/**"],
                    "sizes": ["128x128", "512x512", "1024x1024"],
                    "formats": ["webp"],
                }
            ]
        )
    )
    assert omitted.outputs.fingerprint == stated.outputs.fingerprint


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("owner,source-name", "'source-name' is the pipeline's own key"),
        ("owner,owner", "twice"),
        ("__name__", "Firestore reserves"),
        (",".join(f"k{i}" for i in range(65)), "at most 64"),
    ],
)
def test_metadata_keys_are_checked(keys, problem):
    with pytest.raises(SettingsError, match=problem):
        settings(METADATA_KEYS=keys)


def test_rules_value_is_empty_text_without_rules():
    assert str(Rules()) == "" and settings().to_env()["OUTPUT_RULES"] == ""
    assert Settings.from_env(REQUIRED | {"OUTPUT_RULES": " "}).output_rules == Rules()
