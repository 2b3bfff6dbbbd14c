"""ISO dates everywhere, the admin included, as on the portal's own pages (Y-m-d H:i:s).

Django's English locale would show "Nov. 23, 2026, 6:57 p.m."; the locale's
format module wins over the DATETIME_FORMAT setting, so the portal gives its own.
"""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
FIRST_DAY_OF_WEEK = 1  # Monday, as ISO 8601
