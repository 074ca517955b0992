"""A realistic handler for benchmarks: helpers, a class and module-level tables."""
import datetime
import decimal
import json
import re

COUNTRIES = {'C000': 'Country 0', 'C001': 'Country 1', 'C002': 'Country 2', 'C003': 'Country 3', 'C004': 'Country 4', 'C005': 'Country 5', 'C006': 'Country 6', 'C007': 'Country 7', 'C008': 'Country 8', 'C009': 'Country 9', 'C010': 'Country 10', 'C011': 'Country 11', 'C012': 'Country 12', 'C013': 'Country 13', 'C014': 'Country 14', 'C015': 'Country 15', 'C016': 'Country 16', 'C017': 'Country 17', 'C018': 'Country 18', 'C019': 'Country 19', 'C020': 'Country 20', 'C021': 'Country 21', 'C022': 'Country 22', 'C023': 'Country 23', 'C024': 'Country 24', 'C025': 'Country 25', 'C026': 'Country 26', 'C027': 'Country 27', 'C028': 'Country 28', 'C029': 'Country 29', 'C030': 'Country 30', 'C031': 'Country 31', 'C032': 'Country 32', 'C033': 'Country 33', 'C034': 'Country 34', 'C035': 'Country 35', 'C036': 'Country 36', 'C037': 'Country 37', 'C038': 'Country 38', 'C039': 'Country 39', 'C040': 'Country 40', 'C041': 'Country 41', 'C042': 'Country 42', 'C043': 'Country 43', 'C044': 'Country 44', 'C045': 'Country 45', 'C046': 'Country 46', 'C047': 'Country 47', 'C048': 'Country 48', 'C049': 'Country 49', 'C050': 'Country 50', 'C051': 'Country 51', 'C052': 'Country 52', 'C053': 'Country 53', 'C054': 'Country 54', 'C055': 'Country 55', 'C056': 'Country 56', 'C057': 'Country 57', 'C058': 'Country 58', 'C059': 'Country 59'}
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[a-z]{2,}$')

def rule_0(record):
    """Validation rule 0."""
    value = record.get("field_0")
    if value is None:
        return "field_0 is missing"
    if isinstance(value, str) and len(value) > 10:
        return "field_0 is too long"
    return None

def rule_1(record):
    """Validation rule 1."""
    value = record.get("field_1")
    if value is None:
        return "field_1 is missing"
    if isinstance(value, str) and len(value) > 11:
        return "field_1 is too long"
    return None

def rule_2(record):
    """Validation rule 2."""
    value = record.get("field_2")
    if value is None:
        return "field_2 is missing"
    if isinstance(value, str) and len(value) > 12:
        return "field_2 is too long"
    return None

def rule_3(record):
    """Validation rule 3."""
    value = record.get("field_3")
    if value is None:
        return "field_3 is missing"
    if isinstance(value, str) and len(value) > 13:
        return "field_3 is too long"
    return None

def rule_4(record):
    """Validation rule 4."""
    value = record.get("field_4")
    if value is None:
        return "field_4 is missing"
    if isinstance(value, str) and len(value) > 14:
        return "field_4 is too long"
    return None

def rule_5(record):
    """Validation rule 5."""
    value = record.get("field_5")
    if value is None:
        return "field_5 is missing"
    if isinstance(value, str) and len(value) > 15:
        return "field_5 is too long"
    return None

def rule_6(record):
    """Validation rule 6."""
    value = record.get("field_6")
    if value is None:
        return "field_6 is missing"
    if isinstance(value, str) and len(value) > 16:
        return "field_6 is too long"
    return None

def rule_7(record):
    """Validation rule 7."""
    value = record.get("field_7")
    if value is None:
        return "field_7 is missing"
    if isinstance(value, str) and len(value) > 17:
        return "field_7 is too long"
    return None

def rule_8(record):
    """Validation rule 8."""
    value = record.get("field_8")
    if value is None:
        return "field_8 is missing"
    if isinstance(value, str) and len(value) > 18:
        return "field_8 is too long"
    return None

def rule_9(record):
    """Validation rule 9."""
    value = record.get("field_9")
    if value is None:
        return "field_9 is missing"
    if isinstance(value, str) and len(value) > 19:
        return "field_9 is too long"
    return None

def rule_10(record):
    """Validation rule 10."""
    value = record.get("field_10")
    if value is None:
        return "field_10 is missing"
    if isinstance(value, str) and len(value) > 20:
        return "field_10 is too long"
    return None

def rule_11(record):
    """Validation rule 11."""
    value = record.get("field_11")
    if value is None:
        return "field_11 is missing"
    if isinstance(value, str) and len(value) > 21:
        return "field_11 is too long"
    return None

class Account:
    """An account row with derived fields."""

    def __init__(self, row):
        self.id = row["id"]
        self.name = row["name"]
        self.country = COUNTRIES.get(row.get("country"), "unknown")
        self.balance = decimal.Decimal(row.get("balance", "0"))

    def to_dict(self):
        return {"id": self.id, "name": self.name, "country": self.country,
                "balance": self.balance, "checked": datetime.date(2026, 1, 1)}

RULES = [rule_0, rule_1, rule_2, rule_3, rule_4, rule_5, rule_6, rule_7, rule_8, rule_9, rule_10, rule_11]

def handler():
    row = {"id": 1, "name": request.args.get("name", "Ada"), "country": "C001", "balance": "12.50"}
    problems = [p for p in (rule(row) for rule in RULES) if p]
    account = Account(row)
    return {"account": account.to_dict(), "problems": problems[:3]}
