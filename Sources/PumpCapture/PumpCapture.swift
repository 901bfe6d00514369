// Link captures in pcapng (SPEC §15).
