"""Prompt collections: shipped defaults, native JSON validation, v0.1 CSVs, the three modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import COMPAT, requires_compat
from fixtures_v01 import V01Tree

from vlmhb.data.synth.fields import DOC_FIELDS
from vlmhb.errors import PromptError
from vlmhb.plan.prompts import PromptCollection, load_prompts, shipped_collections


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


MINIMAL = {
    "name": "mini",
    "defaults": {"field": "Поле {field_label} ({doc_type})", "document": "JSON {fields_json}"},
}


def test_default_collection_covers_the_generated_types_in_every_mode() -> None:
    collection = load_prompts(None)
    assert collection.name == "default" and "default" in shipped_collections()
    assert load_prompts("default").content_hash() == collection.content_hash()
    for doc_type, specs in DOC_FIELDS.items():
        keys = [s.key for s in specs]
        for spec in specs:
            rendered = collection.render(doc_type, spec.key, keys, "field")
            assert rendered.system and "{" not in rendered.prompt
            assert collection.field_label(doc_type, spec.key) == spec.label
        document = collection.render(doc_type, None, keys, "document").prompt
        template = json.loads(document[document.rindex("{") :])
        assert list(template) == keys and all(spec.label in document for spec in specs)
        assert "текст" in collection.render(doc_type, None, keys, "text").prompt


def test_placeholders_and_fallbacks() -> None:
    collection = load_prompts(None)
    # An unknown document type and field fall back to the generic templates, with the key as label.
    rendered = collection.render("receipt", "Итого", ["Итого"], "field")
    assert "«Итого»" in rendered.prompt and "receipt" in rendered.prompt
    surname = collection.render("passport", "surname", [], "field").prompt
    assert "«Фамилия»" in surname and "паспорт" in surname
    with pytest.raises(ValueError, match="unknown mode"):
        collection.render("passport", "surname", [], "vqa")
    with pytest.raises(ValueError, match="needs a field"):
        collection.render("passport", None, [], "field")


def test_native_collection_per_type_and_field_prompts(tmp_path: Path) -> None:
    data = {
        **MINIMAL,
        "system": "Система",
        "doc_types": {
            "passport": {
                "label": "паспорт",
                "system": "Паспортная система",
                "field": 'Что в поле «{field_label}» ({doc_type_label})? Пример: {"a": 1}',
                "fields": {
                    "surname": {"label": "Фамилия", "prompt": "Фамилия?"},
                    "name": {"label": "Имя"},
                },
            }
        },
    }
    collection = load_prompts("c.json", base=_write(tmp_path / "c.json", data).parent)
    assert collection.render("passport", "surname", [], "field").prompt == "Фамилия?"
    rendered = collection.render("passport", "name", [], "field")
    assert rendered == type(rendered)(
        "Паспортная система", 'Что в поле «Имя» (паспорт)? Пример: {"a": 1}'
    )
    other = collection.render("invoice", "total", ["total", "date"], "field")
    assert other.system == "Система" and other.prompt == "Поле total (invoice)"
    assert (
        collection.render("invoice", None, ["total", "date"], "document").prompt
        == 'JSON {"total": "", "date": ""}'
    )
    with pytest.raises(PromptError, match=r"defaults\.text"):
        collection.render("invoice", None, [], "text")


def test_content_hash_ignores_formatting_and_follows_content(tmp_path: Path) -> None:
    a = load_prompts(str(_write(tmp_path / "a.json", MINIMAL)))
    (tmp_path / "b.json").write_text(json.dumps(MINIMAL, indent=4), encoding="utf-8")
    b = load_prompts(str(tmp_path / "b.json"))
    c = load_prompts(str(_write(tmp_path / "c.json", {**MINIMAL, "system": "x"})))
    assert a.content_hash() == b.content_hash() != c.content_hash()


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"defaults": {}}, "name", "Field required"),
        (
            {**MINIMAL, "defaults": {"field": "{feild}"}},
            "defaults.field",
            "unknown placeholder {feild}",
        ),
        (
            {**MINIMAL, "doc_types": {"p": {"document": "{field}"}}},
            "doc_types.p.document",
            "in document mode",
        ),
        (
            {**MINIMAL, "doc_types": {"p": {"fields": {"s": {"prompt": "{fields}"}}}}},
            "doc_types.p.fields.s.prompt",
            "{fields}",
        ),
        (
            {**MINIMAL, "doc_types": {"p": {"fields": {"s": {"lable": "x"}}}}},
            "doc_types.p.fields.s.lable",
            "Extra",
        ),
        ({**MINIMAL, "version": 2}, "version", "Input should be 1"),
    ],
)
def test_invalid_collections_name_file_and_key(
    tmp_path: Path, data: dict, key: str, message: str
) -> None:
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(PromptError) as info:
        load_prompts(str(path))
    problem = info.value.problems[0]
    assert problem.file == str(path) and problem.column == key and message in problem.message


def test_unreadable_collections(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"name": "x",\n  oops}', encoding="utf-8")
    with pytest.raises(PromptError) as info:
        load_prompts(str(tmp_path / "x.json"))
    assert info.value.problems[0].row == 2
    with pytest.raises(PromptError, match="file not found"):
        load_prompts(str(tmp_path / "none.json"))
    with pytest.raises(PromptError, match="no shipped prompt collection"):
        load_prompts("nonexistent")
    with pytest.raises(PromptError, match=r"expected a \.json"):
        load_prompts(str(tmp_path / "x.yaml"))
    (tmp_path / "p.csv").write_text(
        "\ufeffprompt;doc_class_question_type;cer\nНапиши;passport;0\n", encoding="utf-8"
    )
    with pytest.raises(PromptError, match=r"p\.csv:2:doc_class_question_type"):
        load_prompts(str(tmp_path / "p.csv"))


def test_v01_csv_reads_as_is_with_default_fallbacks(v01_tree: V01Tree) -> None:
    path = v01_tree.prompts / "ours_field_prompts_b.csv"
    collection: PromptCollection = load_prompts(str(path))
    assert collection.name == path.stem
    assert collection.render("passport", "Пол", [], "field").prompt == (
        "Найди на изображении поле «Пол» и выпиши его значение. "
        "Ответ дай одной строкой, без пояснений."
    )
    assert collection.render("invoice", "Продавец", [], "field").prompt.startswith(
        "Найди на изображении поле «Продавец»"
    )
    document = collection.render("passport", None, ["Фамилия", "Имя"], "document").prompt
    assert '{"Фамилия": "", "Имя": ""}' in document and "паспорт" in document
    # A question the CSV does not have falls back to the generic field template.
    assert "«Серия»" in collection.render("passport", "Серия", [], "field").prompt


@requires_compat
def test_real_v01_csv_reads_as_is() -> None:
    path = (
        COMPAT
        / "PromptCollections"
        / "VQA"
        / "demo_mini"
        / "JuliaJu_Qwen2_5-VL-3B_demo_mini_008.csv"
    )
    collection: PromptCollection = load_prompts(str(path))
    assert collection.render("passport", "Пол", [], "field").prompt.startswith(
        "Напиши поле Пол в нижнем регистре."
    )
    assert collection.render("invoice", "Продавец", [], "field").prompt.endswith(
        "Пример: РАО «Лимончик»"
    )
