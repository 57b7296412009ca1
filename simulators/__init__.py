"""Virtual peripherals that speak the real devices' wire protocols (over a pseudo-terminal or
TCP) with fault injection. They reuse the drivers' codecs; never ``device`` or ``host`` code."""
