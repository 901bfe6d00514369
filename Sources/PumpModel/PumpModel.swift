// PumpModel module.
