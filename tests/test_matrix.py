"""Matrix expansion (GitHub Actions rules): recraft_build.spec.matrix."""

from __future__ import annotations

from recraft_build.spec.matrix import count_combinations, expand, matrix_problems


def test_no_matrix_is_one_combination():
    assert expand(None) == [{}]
    assert count_combinations(None) == 1


def test_cartesian_product_in_key_order_last_key_fastest():
    m = {"a": [1, 2], "b": ["x", "y"]}
    assert expand(m) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                         {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert count_combinations(m) == 4


def test_count_is_arithmetic_and_does_not_expand():
    big = {f"k{i}": list(range(10)) for i in range(30)}  # 10^30 combinations
    assert count_combinations(big) == 10 ** 30


def test_exclude_drops_combinations_matching_all_given_keys():
    m = {"a": [1, 2], "b": ["x", "y"], "exclude": [{"a": 1, "b": "y"}, {"b": "x", "a": 2}]}
    assert expand(m) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_partial_exclude_drops_every_match():
    m = {"a": [1, 2], "b": ["x", "y"], "exclude": [{"a": 1}]}
    assert expand(m) == [{"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_include_extends_matching_combinations():
    m = {"item": ["sword", "potion"], "include": [{"item": "potion", "detail": "red"}]}
    assert expand(m) == [{"item": "sword"}, {"item": "potion", "detail": "red"}]
    assert count_combinations(m) == 3  # an upper bound


def test_include_without_matrix_keys_extends_every_combination():
    m = {"a": [1, 2], "include": [{"color": "red"}]}
    assert expand(m) == [{"a": 1, "color": "red"}, {"a": 2, "color": "red"}]


def test_include_that_would_overwrite_a_matrix_value_is_a_new_combination():
    m = {"a": [1, 2], "include": [{"a": 3, "extra": True}]}
    assert expand(m) == [{"a": 1}, {"a": 2}, {"a": 3, "extra": True}]


def test_include_may_overwrite_values_added_by_earlier_includes():
    m = {"a": [1], "include": [{"color": "red"}, {"color": "blue"}]}
    assert expand(m) == [{"a": 1, "color": "blue"}]


def test_include_only_matrix():
    m = {"include": [{"x": 1}, {"x": 2}]}
    assert expand(m) == [{"x": 1}, {"x": 2}]
    assert count_combinations(m) == 2


def test_excluded_combinations_are_not_extended_by_include():
    m = {"a": [1, 2], "exclude": [{"a": 1}], "include": [{"a": 1, "k": "v"}]}
    assert expand(m) == [{"a": 2}, {"a": 1, "k": "v"}]


def test_problems_exclude_with_unknown_key_and_empty_matrix():
    problems = list(matrix_problems({"item": [1], "exclude": [{"itme": 1}]}))
    assert problems == [(("exclude", 0, "itme"),
                         "exclude names 'itme', which is not a matrix key", "matrix keys: item")]
    assert list(matrix_problems({"exclude": []}))[0][1] == "the matrix has no keys"
    assert list(matrix_problems({"item": [1, 2]})) == []
