"""Names, display scales and directions of the structure scores (C-alpha RMSD, GDT_TS, GDT_HA, TM-score)."""

HIGHER_BETTER = {"gdt_ts": True, "gdt_ha": True, "rmsd": False, "tm": True}
ROW_NAMES = {"gdt_ts": "GDT_TS (x100)", "gdt_ha": "GDT_HA (x100)", "rmsd": "C-alpha RMSD (Å)", "tm": "TM-score"}
SCALE = {"gdt_ts": 100.0, "gdt_ha": 100.0, "rmsd": 1.0, "tm": 1.0}
