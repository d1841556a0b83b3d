"""Smart meters: native payload formats and each meter's interval energy from its samples."""
