"""The reports' cache namespace (see shop.caching): bumped by every order, account and
low-stock change (reports.subscribers); answers are also cached only a minute."""

REPORTS = "reports"
