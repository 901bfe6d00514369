// PumpEmulator module.
