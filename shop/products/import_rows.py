"""Reading a catalog CSV in the export's columns, with no database: its encoding, its header,
and each row's cells checked and converted (what `imports` then applies, a batch at a time).

Rows are numbered as a spreadsheet numbers them: the header is row 1, the first product row 2.
A file may name only some columns (`sku` is required): a column it leaves out changes nothing.
An empty cell leaves the value as it is (a new product gets the default), except where "none"
is a value: `category` (no category), `compare_at_price` (no list price) and `product_sku`
(the row is a product's, not a variant's).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from shop.errors import Unprocessable
from shop.products.schemas import MAX_STOCK
from shop.products.transfer import COLUMNS, FORMULA_STARTS
from shop.schemas import CENT, POSITIVE_MONEY, Money

MAX_IMPORT_BYTES = 50 * 1024 * 1024  # what POST /products/import reads (413 beyond)
HEADER_ROW = 1
# What spreadsheets save a CSV as: UTF-8 (a BOM or not), else Windows' Latin-1, which
# decodes almost anything; latin-1 (which decodes everything) is the last resort.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
CHUNK = 1 << 20
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
PATH_SEPARATOR = ">"
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
# Cells of a variant's row that are its product's (the export repeats them): not read.
PRODUCT_ONLY = ("category", "low_stock_threshold", "is_featured")
_money, _PRICE = Money(), re.compile(POSITIVE_MONEY)


@dataclass
class Row:
    """One data row: its key (`sku`), the variant's product (`product_sku`, None on a product's
    row), the values it gives, and what is wrong with it ({row, field, message} each)."""

    number: int
    sku: str = ""
    product_sku: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, field: str | None, message: str) -> None:
        self.errors.append({"row": self.number, "field": field, "message": message})

    @property
    def key(self) -> str:
        return self.sku.lower()

    @property
    def product_key(self) -> str | None:
        return self.product_sku.lower() if self.product_sku else None


def _refuse(message: str) -> Unprocessable:
    return Unprocessable(message, errors={"file": [message]})


def detect_encoding(data: bytes) -> str:
    """The first of ENCODINGS that decodes the whole file (a megabyte at a time)."""
    for encoding in ENCODINGS[:-1]:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for start in range(0, len(data), CHUNK):
                decoder.decode(data[start : start + CHUNK])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    return ENCODINGS[-1]


def read_header(data: bytes) -> tuple[str, list[str]]:
    """The file's encoding and its columns; a 422 naming what is wrong when it is not a CSV
    of the export's columns with `sku` among them."""
    if not data.strip():
        raise _refuse("The file is empty: it needs a header row (sku, name, price, ...).")
    if b"\x00" in data:
        raise _refuse("This is not a CSV text file (it holds NUL bytes): save it as CSV UTF-8.")
    encoding = detect_encoding(data)
    try:
        header = next(csv.reader(_text(data, encoding)))
    except csv.Error as error:
        raise _refuse(f"The header row is not CSV: {error}.") from None
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise _refuse(
            f"Unknown columns: {', '.join(repr(n[:40]) for n in unknown[:10])}. "
            f"The columns are those of the export: {', '.join(COLUMNS)}."
        )
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        raise _refuse(f"Columns named twice: {', '.join(twice)}.")
    if "sku" not in columns:
        raise _refuse("The sku column is required: rows are matched by SKU.")
    return encoding, columns


def _text(data: bytes, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")


def records(data: bytes, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of every data row that is not blank. Raises csv.Error (with the
    row number in its message) on text the CSV reader cannot read."""
    reader = csv.reader(_text(data, encoding))
    number = HEADER_ROW
    next(reader, None)
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise csv.Error(f"row {number}: {error}") from None
        if any(cell.strip() for cell in cells):
            yield number, cells


def _unquoted(cell: str) -> str:
    """A cell as it was before the export kept it from running as a formula ("'=1+1")."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def parse(columns: list[str], number: int, cells: list[str]) -> Row:
    """A data row's cells checked and converted: `values` holds what it gives."""
    row = Row(number)
    if len(cells) > len(columns):
        row.fail(None, f"{len(cells)} cells, but the header names {len(columns)} columns.")
        return row
    given = {
        name: _unquoted(cell)
        for name, cell in zip(columns, cells, strict=False)
        if cell.strip() or name in ("category", "compare_at_price")
    }
    row.sku = given.pop("sku", "").strip()
    row.product_sku = given.pop("product_sku", "").strip() or None
    for name, sku in (("sku", row.sku), ("product_sku", row.product_sku)):
        if sku is None:
            continue
        if not sku:
            row.fail(name, "Required: rows are matched by SKU.")
        elif len(sku) > 64 or not SKU.fullmatch(sku):
            row.fail(name, "At most 64 letters, digits, '.', '_' and '-', from a letter or digit.")
    for name, cell in given.items():
        if row.product_sku and name in PRODUCT_ONLY:
            continue
        try:
            row.values[name] = CELLS[name](cell)
        except ValidationError as error:
            messages = error.messages if isinstance(error.messages, list) else [error.messages]
            for message in messages:
                row.fail(name, str(message))
    return row


def _name(cell: str) -> str:
    if len(cell) > 200:
        raise ValidationError("At most 200 characters.")
    return cell


def _category(cell: str) -> tuple[str, ...] | None:
    """A path from the root, "Garden > Tools"; empty: no category."""
    if not cell.strip():
        return None
    names = tuple(name.strip() for name in cell.split(PATH_SEPARATOR))
    if not all(names):
        raise ValidationError('A path of category names such as "Garden > Tools".')
    if any(len(name) > 120 for name in names):
        raise ValidationError("Category names have at most 120 characters.")
    return names


def _price(cell: str) -> Decimal:
    text = cell.strip()
    if _PRICE.fullmatch(text):  # the usual case, without the field's machinery
        return Decimal(text).quantize(CENT)
    price: Decimal = _money.deserialize(text)  # raises, with the API's own message
    return price


def _list_price_cell(cell: str) -> Decimal | None:
    return _price(cell) if cell.strip() else None


def _count(cell: str) -> int:
    text = cell.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_STOCK:
        raise ValidationError(f"A whole number from 0 to {MAX_STOCK}.")
    return int(text)


def _flag(cell: str) -> bool:
    text = cell.strip().lower()
    if text not in TRUE | FALSE:
        raise ValidationError("true or false.")
    return text in TRUE


CELLS: dict[str, Any] = {
    "name": _name,
    "category": _category,
    "price": _price,
    "compare_at_price": _list_price_cell,
    "stock": _count,
    "low_stock_threshold": _count,
    "is_active": _flag,
    "is_featured": _flag,
}
