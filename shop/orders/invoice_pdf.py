"""The invoice PDF of a paid order, drawn with fpdf2 (pure Python: no system libraries).

Text is set in DejaVu Sans, embedded from shop/fonts (its licence beside it), so any Latin,
Greek or Cyrillic name prints as written; a character the font lacks (CJK, emoji) prints as
"?" rather than as an empty box or an error. Money is printed from the Decimal, two places."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import TTFFont

from shop.orders.billing_models import Refund
from shop.orders.models import Order, Payment

FONTS = Path(__file__).resolve().parent.parent / "fonts"
FAMILY = "DejaVu"
CENT = Decimal("0.01")
# SKU, item, quantity, unit price, discount, tax, line total: 180 mm, A4 less the margins.
COLUMNS = (26, 62, 12, 22, 19, 19, 20)
HEADINGS = ("SKU", "Item", "Qty", "Unit price", "Discount", "Tax", "Total")
HEADING = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
ENTRY_CHARS = 100  # a long refund reason is cut to one line


@dataclass(frozen=True)
class Store:
    name: str
    address: str  # lines apart with newlines (or a written "\n")
    email: str
    tax_id: str


@dataclass(frozen=True)
class Invoice:
    store: Store
    order: Order
    customer_email: str
    customer_name: str
    payments: list[Payment]
    refunds: list[Refund]


def money(value: Decimal) -> str:
    return f"{Decimal(value).quantize(CENT):.2f}"


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.add_font(FAMILY, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        font = self.fonts[FAMILY.lower()]
        assert isinstance(font, TTFFont)
        self._glyphs: set[int] = set(font.cmap)
        self.footer_text = ""

    def printable(self, text: str) -> str:
        """`text` with what the font cannot draw (and control characters) as "?"."""
        return "".join(c if ord(c) in self._glyphs and c.isprintable() else "?" for c in str(text))

    def line_of(self, text: str, *, size: float = 9, bold: bool = False, align: Any = "L") -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.cell(
            0, size * 0.5, self.printable(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FAMILY, "", 7)
        self.cell(0, 5, self.printable(f"{self.footer_text}  ·  page {self.page_no()}"),
                  align="C")  # fmt: skip


def render(invoice: Invoice) -> bytes:
    order = invoice.order
    pdf = _Document()
    pdf.footer_text = f"{invoice.store.name} · invoice {order.invoice_number}"
    pdf.set_title(f"Invoice {order.invoice_number}")
    pdf.set_author(invoice.store.name)
    pdf.add_page()
    _heading(pdf, invoice)
    _lines(pdf, order)
    _totals(pdf, order)
    _money_moves(pdf, invoice)
    return bytes(pdf.output())


def _heading(pdf: _Document, invoice: Invoice) -> None:
    order, store = invoice.order, invoice.store
    top = pdf.get_y()
    pdf.line_of(store.name, size=16, bold=True)
    pdf.ln(1)
    for line in store.address.replace("\\n", "\n").splitlines():
        pdf.line_of(line)
    if store.email:
        pdf.line_of(store.email)
    if store.tax_id:
        pdf.line_of(f"Tax ID: {store.tax_id}")
    bottom = pdf.get_y()
    pdf.set_xy(120, top)
    pdf.set_font(FAMILY, "B", 16)
    pdf.cell(75, 8, "INVOICE", align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    assert order.invoiced_at is not None
    for label, value in (
        ("Invoice number", order.invoice_number or ""),
        ("Invoice date", f"{order.invoiced_at:%Y-%m-%d}"),
        ("Order", order.number),
        ("Order date", f"{order.created_at:%Y-%m-%d}"),
        ("Currency", order.currency),
    ):
        pdf.set_x(120)
        pdf.set_font(FAMILY, "", 9)
        pdf.cell(35, 5, label)
        pdf.set_font(FAMILY, "B", 9)
        pdf.cell(40, 5, pdf.printable(value), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_y(max(bottom, pdf.get_y()) + 6)
    pdf.line_of("Bill to", size=10, bold=True)
    address = order.shipping_address or {}
    for line in (
        invoice.customer_name,
        invoice.customer_email,
        address.get("line1", ""),
        address.get("line2", ""),
        " ".join(p for p in (address.get("postal_code"), address.get("city")) if p),
        ", ".join(p for p in (address.get("state"), address.get("country")) if p),
        address.get("phone", ""),
    ):
        if line:
            pdf.line_of(line)
    pdf.ln(5)


def _lines(pdf: _Document, order: Order) -> None:
    pdf.set_font(FAMILY, "", 8.5)
    right = (Align.L, Align.L, Align.R, Align.R, Align.R, Align.R, Align.R)
    with pdf.table(
        col_widths=COLUMNS,
        text_align=right,
        line_height=5,
        padding=1,
        headings_style=HEADING,
        first_row_as_headings=True,
    ) as table:
        table.row(list(HEADINGS))
        for item in order.items:
            table.row(
                [
                    pdf.printable(item.sku),
                    pdf.printable(item.name),
                    str(item.quantity),
                    money(item.unit_price),
                    money(item.discount),
                    money(item.tax),
                    money(item.line_total),
                ]
            )
    pdf.ln(3)


def _totals(pdf: _Document, order: Order) -> None:
    added = order.subtotal - order.discount + order.shipping_cost + order.tax == order.total
    rows: list[tuple[str, Decimal, bool]] = [("Subtotal", order.subtotal, False)]
    if order.discount:
        code = f" (coupon {order.coupon_code})" if order.coupon_code else ""
        rows.append((f"Discount{code}", -order.discount, False))
    rows.append(("Shipping", order.shipping_cost, False))
    for line in order.tax_lines or []:
        rate = Decimal(line["rate"]) * 100
        included = "" if added else ", included"
        rows.append((f"{line['name']} ({rate.normalize():f} %{included})", Decimal(line["amount"]),
                     False))  # fmt: skip
    if not order.tax_lines and order.tax:
        rows.append(("Tax" if added else "Tax (included)", order.tax, False))
    rows.append((f"Total ({order.currency})", order.total, True))
    _figures(pdf, rows)


def _figures(pdf: _Document, rows: list[tuple[str, Decimal, bool]]) -> None:
    for label, value, strong in rows:
        pdf.set_x(105)
        pdf.set_font(FAMILY, "B" if strong else "", 10 if strong else 9)
        pdf.cell(65, 6, pdf.printable(label), align="R")
        pdf.cell(25, 6, money(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _money_moves(pdf: _Document, invoice: Invoice) -> None:
    order = invoice.order
    pdf.ln(4)
    pdf.line_of("Payments", size=10, bold=True)
    if not invoice.payments:
        pdf.line_of("None recorded.")
    for payment in invoice.payments:
        reference = f" · {payment.reference}" if payment.reference else ""
        _entry(pdf, f"{payment.created_at:%Y-%m-%d}  {payment.method}{reference}", payment.amount)
    if invoice.refunds:
        pdf.ln(2)
        pdf.line_of("Refunds", size=10, bold=True)
        for refund in invoice.refunds:
            _entry(pdf, f"{refund.created_at:%Y-%m-%d}  {refund.reason}", -refund.amount)
    pdf.ln(2)
    paid = order.amount_paid or Decimal("0.00")
    refunded = order.amount_refunded or Decimal("0.00")
    rows = [("Amount paid", paid, False)]
    if refunded:
        rows.append(("Amount refunded", -refunded, False))
    rows.append((f"Balance due ({order.currency})", order.total - paid, True))
    _figures(pdf, rows)


def _entry(pdf: _Document, label: str, amount: Decimal) -> None:
    pdf.set_font(FAMILY, "", 9)
    text = pdf.printable(label)
    if len(text) > ENTRY_CHARS:
        text = text[: ENTRY_CHARS - 1] + "…"
    pdf.cell(150, 5, text)
    pdf.cell(30, 5, money(amount), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
