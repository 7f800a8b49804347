"""Layouts: one function per document type drawing its values the way the real document looks.

Each returns the ``Page`` (image, transcription, value boxes). Backgrounds are drawn from the
document's own random stream so renders stay deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from vlmhb.data.synth.fields import DOC_FIELDS
from vlmhb.data.synth.fonts import font
from vlmhb.data.synth.page import GREY, Color, Page

RED: Color = (170, 30, 30)
RULE: Color = (175, 175, 180)


def _anchor(doc_type: str, key: str) -> str:
    return next(s.anchor for s in DOC_FIELDS[doc_type] if s.key == key)


def _guilloche(page: Page, rng: random.Random, color: Color, top: int, bottom: int) -> None:
    """Faint security waves, like the background print of Russian identity documents."""
    draw = page.draw
    width = page.image.width
    for _ in range(6):
        amp, period, phase = rng.uniform(8, 30), rng.uniform(120, 320), rng.uniform(0, 6.3)
        base = rng.uniform(top + 30, bottom - 30)
        points = [
            (x, base + amp * math.sin(x / period * 6.283 + phase)) for x in range(0, width, 8)
        ]
        draw.line(points, fill=color, width=2)


def render_passport(values: dict[str, Any], rng: random.Random) -> Page:
    """Two-page passport spread: issue data on the upper page, holder data beside a photo below."""
    page = Page.blank(1000, 1300, (246, 236, 230))
    draw = page.draw
    _guilloche(page, rng, (236, 218, 214), 0, 640)
    _guilloche(page, rng, (236, 218, 214), 660, 1300)
    draw.line([(0, 650), (1000, 650)], fill=(200, 180, 175), width=3)
    title = "РОССИЙСКАЯ ФЕДЕРАЦИЯ"
    page.text(
        500 - int(font(30, bold=True).getlength(title)) // 2, 80, title, font(30, bold=True), RED
    )
    y = 170
    y = page.labelled(
        60, y, _anchor("passport", "issued_by"), values["issued_by"], "issued_by", 880
    )
    y += 30
    page.labelled(60, y, "Дата выдачи", values["issue_date"], "issue_date", 880)
    y += 70
    page.labelled(60, y, "Код подразделения", values["department_code"], "department_code", 880)
    y += 90
    page.text(60, y, "Личная подпись", font(22), GREY)
    draw.line([(260, y + 4), (560, y + 4)], fill=GREY, width=1)
    page.text(360, 610, "М.П.", font(22), GREY)
    page.labelled(60, 730, "Серия и номер", values["series_number"], "series_number", 900)
    draw.rectangle([60, 790, 320, 1130], outline=GREY, width=2, fill=(228, 228, 232))
    draw.ellipse([135, 840, 245, 960], fill=(200, 200, 208))
    draw.pieslice([95, 960, 285, 1160], 180, 360, fill=(200, 200, 208))
    y = 830
    for key in ("surname", "name", "patronymic", "sex", "birth_date"):
        y = page.labelled(360, y, _anchor("passport", key), values[key], key, 600) + 20
    page.labelled(360, y, "Место рождения", values["birth_place"], "birth_place", 600)
    return page


def render_snils(values: dict[str, Any], rng: random.Random) -> Page:
    """Green SNILS card: title, insurance number, holder data, registration date."""
    page = Page.blank(1000, 760, (214, 236, 214))
    draw = page.draw
    _guilloche(page, rng, (196, 224, 198), 0, 760)
    draw.rounded_rectangle([12, 12, 988, 748], radius=24, outline=(90, 140, 95), width=4)
    for y, title in (
        (70, "СТРАХОВОЕ СВИДЕТЕЛЬСТВО"),
        (110, "ОБЯЗАТЕЛЬНОГО ПЕНСИОННОГО СТРАХОВАНИЯ"),
    ):
        face = font(26, bold=True)
        page.text(500 - int(face.getlength(title)) // 2, y, title, face, (30, 80, 40))
    y = 180
    y = page.labelled(50, y, _anchor("snils", "snils"), values["snils"], "snils", 900) + 16
    for key in ("surname", "name", "patronymic", "birth_date", "birth_place", "sex"):
        y = page.labelled(50, y, _anchor("snils", key), values[key], key, 900) + 10
    page.labelled(
        50, y + 10, "Дата регистрации", values["registration_date"], "registration_date", 900
    )
    return page


_COLUMNS = (
    ("№", 50),
    ("Наименование товара", 470),
    ("Ед.", 80),
    ("Кол-во", 100),
    ("Цена", 170),
    ("Стоимость без налога", 230),
    ("Ставка", 100),
    ("Сумма налога", 180),
    ("Стоимость с налогом", 250),
)


def render_invoice(values: dict[str, Any], rng: random.Random) -> Page:
    """Счёт-фактура on an A4 landscape sheet (150 dpi): header lines, goods table, total row."""
    page = Page.blank(1754, 1240, (255, 255, 255))
    size = 24
    page.text(1300, 60, "Приложение № 1 к постановлению", font(18), GREY)
    page.text(1300, 84, "Правительства РФ № 1137", font(18), GREY)
    y = 150
    x = page.text(60, y, "СЧЁТ-ФАКТУРА №", font(30, bold=True))
    x = page.text(x + 14, y, values["number"], font(30, bold=True), key="number")
    x = page.text(x + 14, y, "от", font(30, bold=True))
    x = page.text(x + 14, y, values["date"], font(30, bold=True), key="date")
    page.text(x + 14, y, "г.", font(30, bold=True))
    y += 60
    for role, who in (("seller", "продавца"), ("buyer", "покупателя")):
        label = "Продавец:" if role == "seller" else "Покупатель:"
        x = page.text(60, y, label, font(size))
        page.text(x + 14, y, values[role], font(size), key=role)
        y += 40
        x = page.text(60, y, "Адрес:", font(size))
        page.text(x + 14, y, values[f"{role}_address"], font(size))
        y += 40
        x = page.text(60, y, f"ИНН/КПП {who}:", font(size))
        x = page.text(x + 14, y, values[f"{role}_inn"], font(size), key=f"{role}_inn")
        x = page.text(x, y, "/", font(size))
        page.text(x, y, values[f"{role}_kpp"], font(size), key=f"{role}_kpp")
        y += 40
        if role == "seller":
            page.text(60, y, "Грузоотправитель и его адрес: он же", font(size))
            y += 40
    page.text(60, y, "Валюта: наименование, код: Российский рубль, 643", font(size))
    y += 50
    _table(page, values, 60, y, size)
    return page


def _table(page: Page, values: dict[str, Any], left: int, top: int, size: int) -> None:
    draw = page.draw
    row_h = 48
    edges = [left]
    for _, width in _COLUMNS:
        edges.append(edges[-1] + width)
    rows: list[list[str]] = [[name for name, _ in _COLUMNS]]
    for number, item in enumerate(values["_items"], start=1):
        rows.append(
            [
                str(number),
                item["name"],
                item["unit"],
                item["qty"],
                item["price"],
                item["net"],
                "20%",
                item["vat"],
                item["gross"],
            ]
        )
    face, head = font(size - 4), font(size - 8, bold=True)
    for r, row in enumerate(rows):
        y0 = top + r * row_h
        for c, cell in enumerate(row):
            draw.rectangle([edges[c], y0, edges[c + 1], y0 + row_h], outline=RULE, width=1)
            page.text(edges[c] + 8, y0 + row_h - 14, cell, head if r == 0 else face)
    y0 = top + len(rows) * row_h
    draw.rectangle([edges[0], y0, edges[-1], y0 + row_h], outline=RULE, width=1)
    page.text(edges[0] + 8, y0 + row_h - 14, "Всего к оплате", font(size, bold=True))
    page.text(edges[-2] + 8, y0 + row_h - 14, values["total"], font(size, bold=True), key="total")
    y = y0 + row_h + 90
    page.text(left, y, "Руководитель организации", font(size - 4), GREY)
    page.text(left + 900, y, "Главный бухгалтер", font(size - 4), GREY)


LAYOUTS: dict[str, Callable[[dict[str, Any], random.Random], Page]] = {
    "passport": render_passport,
    "snils": render_snils,
    "invoice": render_invoice,
}
