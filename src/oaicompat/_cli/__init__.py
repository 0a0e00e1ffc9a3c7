"""The parts of the ``oaicompat`` command; ``oaicompat.cli`` wires them to argparse."""
