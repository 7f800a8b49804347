"""Ground-truth values for each document type, drawn from Faker's ``ru_RU`` locale.

Every draw goes through one ``random.Random`` seeded per document, so a document's values
depend only on (seed, document type, index), never on the order or process that makes it.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker import Faker

MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
    "октября", "ноября", "декабря",
)  # fmt: skip

GOODS = (
    ("Бумага офисная А4, 500 л.", "пач"), ("Картридж лазерный", "шт"),
    ("Монитор 24 дюйма", "шт"), ("Кресло офисное", "шт"), ("Услуги по доставке", "усл"),
    ("Цемент М500, мешок 50 кг", "шт"), ("Кабель ВВГ 3х2,5", "м"), ("Ноутбук 15,6 дюйма", "шт"),
    ("Краска фасадная белая", "л"), ("Доска обрезная 50х150", "м3"), ("Труба стальная 57 мм", "м"),
    ("Консультационные услуги", "усл"), ("Стол письменный", "шт"), ("Масло моторное 5W-40", "л"),
)  # fmt: skip


@cache
def _faker() -> Faker:
    from faker import Faker

    return Faker("ru_RU")


def seeded_faker(seed: int) -> Faker:
    """The process's ``ru_RU`` Faker, reseeded for one document."""
    fake = _faker()
    fake.seed_instance(seed)
    return fake


def snils_checksum(digits9: str) -> str:
    """The two check digits of a SNILS number from its first nine digits."""
    total = sum(int(d) * w for d, w in zip(digits9, range(9, 0, -1), strict=True))
    if total > 101:
        total %= 101
    return "00" if total in (100, 101) else f"{total:02d}"


def snils_is_valid(snils: str) -> bool:
    """True if ``snils`` (any separators) has eleven digits and a correct checksum."""
    digits = "".join(c for c in snils if c.isdigit())
    return len(digits) == 11 and snils_checksum(digits[:9]) == digits[9:]


def format_snils(digits9: str) -> str:
    """``123-456-789 01``: nine digits and their checksum in the printed form."""
    d = digits9 + snils_checksum(digits9)
    return f"{d[0:3]}-{d[3:6]}-{d[6:9]} {d[9:11]}"


def ru_date(day: dt.date) -> str:
    """``28 сентября 2010``: the long Russian date form used on invoices."""
    return f"{day.day} {MONTHS_GENITIVE[day.month - 1]} {day.year}"


def money(amount: Decimal) -> str:
    """``13 488,61``: roubles with a space between thousands and a decimal comma."""
    text = f"{amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,.2f}"
    return text.replace(",", " ").replace(".", ",")


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def _person(fake: Faker, rng: random.Random) -> dict[str, str]:
    male = rng.random() < 0.5
    city = fake.city_name()
    born = _date_between(rng, dt.date(1950, 1, 1), dt.date(2005, 12, 31))
    place = f"гор. {city}" if rng.random() < 0.4 else f"гор. {city}, {fake.region()}"
    return {
        "surname": fake.last_name_male() if male else fake.last_name_female(),
        "name": fake.first_name_male() if male else fake.first_name_female(),
        "patronymic": fake.middle_name_male() if male else fake.middle_name_female(),
        "sex": "муж." if male else "жен.",
        "birth_date": born.strftime("%d.%m.%Y"),
        "birth_place": place,
        "_born": born.isoformat(),
        "_city": city,
    }


def passport_values(seed: int) -> dict[str, Any]:
    """Fields of a passport main page."""
    fake = seeded_faker(seed)
    rng = fake.random
    person = _person(fake, rng)
    born = dt.date.fromisoformat(person["_born"])
    issued = _date_between(rng, born + dt.timedelta(days=14 * 366), dt.date(2025, 6, 30))
    city = person["_city"]
    head = rng.randint(100, 999)  # region (never 00), then a department level 0-3
    code = f"{head // 10:02d}{head % 4}-{rng.randint(0, 999):03d}"
    issued_by = rng.choice(
        (f"ТП УФМС России в гор. {city}", f"ГУ МВД России, гор. {city}",
         f"Отделом УФМС России, {fake.region()}", f"ОВД гор. {fake.city_name()}")
    )  # fmt: skip
    series = f"{rng.randint(1, 99):02d}{rng.randint(0, 25):02d}"
    return {
        "issued_by": issued_by,
        "issue_date": issued.strftime("%d.%m.%Y"),
        "department_code": code,
        "series_number": f"{series} {rng.randint(100000, 999999)}",
        **{k: v for k, v in person.items() if not k.startswith("_")},
    }


def snils_values(seed: int) -> dict[str, Any]:
    """Fields of a SNILS card; the number carries a valid checksum."""
    fake = seeded_faker(seed)
    rng = fake.random
    person = _person(fake, rng)
    born = dt.date.fromisoformat(person["_born"])
    registered = _date_between(rng, max(born, dt.date(1996, 1, 1)), dt.date(2025, 6, 30))
    digits = f"{rng.randint(1_001_999, 999_999_999):09d}"
    return {
        "snils": format_snils(digits),
        **{k: v for k, v in person.items() if not k.startswith("_")},
        "registration_date": registered.strftime("%d.%m.%Y"),
    }


def _company(fake: Faker, rng: random.Random) -> str:
    name = fake.company()
    if "«" not in name:
        name = f"{rng.choice(('ООО', 'АО', 'ПАО', 'ЗАО'))} «{fake.large_company()}»"
    return name


def invoice_values(seed: int) -> dict[str, Any]:
    """Fields of a счёт-фактура, plus its goods table (``_items``, not a field)."""
    fake = seeded_faker(seed)
    rng = fake.random
    items = []
    total = Decimal(0)
    for name, unit in rng.sample(GOODS, rng.randint(2, 5)):
        qty = rng.randint(1, 40)
        price = Decimal(rng.randint(5000, 1_500_000)) / 100
        net = price * qty
        vat = (net * Decimal("0.20")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        total += net + vat
        items.append({"name": name, "unit": unit, "qty": str(qty), "price": money(price),
                      "net": money(net), "vat": money(vat), "gross": money(net + vat)})  # fmt: skip
    return {
        "number": str(rng.randint(1, 2999)),
        "date": ru_date(_date_between(rng, dt.date(2008, 1, 1), dt.date(2025, 6, 30))),
        "seller": _company(fake, rng),
        "seller_inn": fake.businesses_inn(),
        "seller_kpp": fake.kpp(),
        "seller_address": fake.address(),
        "buyer": _company(fake, rng),
        "buyer_inn": fake.businesses_inn(),
        "buyer_kpp": fake.kpp(),
        "buyer_address": fake.address(),
        "total": money(total),
        "_items": items,
    }


VALUES = {"passport": passport_values, "snils": snils_values, "invoice": invoice_values}
