"""Time-aligned transcripts: the data model (`model`), one reader per format (`textgrid`, `mfa`,
`ctm`, `rttm`, `lhotse`), the format dispatcher (`formats`) and keyword matching (`keywords`)."""
