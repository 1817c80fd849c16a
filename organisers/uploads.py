"""What every upload of the console checks first: that a CSV is not another kind of file."""

# Files people pick by mistake instead of the CSV, by their first bytes.
BINARY_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zipped file",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"%PDF": "a PDF",
}


def binary_kind(data: bytes) -> str | None:
    """What kind of non-CSV file this is, in words, or None if it may be a CSV."""
    return next((kind for signature, kind in BINARY_SIGNATURES.items()
                 if data.startswith(signature)), None)
