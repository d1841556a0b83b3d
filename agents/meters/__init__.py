"""Smart meters: native payload formats (one module each, registered in
:mod:`agents.meters.formats`) and each meter's interval energy from its samples
(:mod:`agents.meters.tracker`)."""
