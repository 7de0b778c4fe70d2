"""chipctl's chip: netlists, mapping onto the emulated core, the emulator and its host interface."""
