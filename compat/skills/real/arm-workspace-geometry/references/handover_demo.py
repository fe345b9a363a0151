"""Reference program kept beside the skill files (a corpus fixture): an import reports it as skipped."""

HANDOVER_HEIGHT = 0.18  # m above the table


def handover_height(table_z):
    return table_z + HANDOVER_HEIGHT
