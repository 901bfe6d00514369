import PumpProtocol

extension DrugLibrary {
    /// The shipped default library, also protocol/drug-library.json.
    ///
    /// | Drug | Label | Concentration µg/mL | Daily µg/day soft / hard | Start µg/day | Increase % | Patient bolus µg soft / hard | Patient µg/day soft / hard |
    /// |---|---|---|---|---|---|---|---|
    /// | morphine | approved (pain) | 10 000–25 000 | 15 000 / 20 000 | – | 50* | 500* / 1 000* | 2 000* / 4 000* |
    /// | hydromorphone | off-label | 1 000*–15 000 | 10 000 / 15 000* | – | 50* | 100* / 200* | 400* / 800* |
    /// | ziconotide | approved (pain) | 25–100, strengths 25, 100 | 12* / 19 | 2 | 50* | 0 / 0 | 0 / 0 |
    /// | baclofen | approved (spasticity) | 50–2 000, strengths 50, 500, 2 000 | 1 000 / 2 000* | – | 30 | 50* / 100* | 200* / 400* |
    /// | bupivacaine | off-label | 1 000*–30 000 | 15 000 / 20 000 | – | 50* | 1 000* / 2 000* | 4 000* / 8 000* |
    /// | clonidine | off-label | 100*–1 000 | 600 / 1 000* | – | 50* | 50* / 100* | 150* / 300* |
    /// | fentanyl | off-label | 50*–10 000* | 500* / 1 000* | – | 50* | 25* / 50* | 100* / 200* |
    /// | sufentanil | off-label | 50*–5 000* | 100* / 200* | – | 50* | 5* / 10* | 20* / 40* |
    ///
    /// Clinician boluses (`clinicianBolus`), single / bridge dose µg soft / hard: morphine
    /// 1 000* / 2 000*, 1 000* / 2 000*; hydromorphone 200* / 400*, 200* / 400*; ziconotide 0 / 0
    /// (infusion only), 2* / 5*; baclofen 50 / 100 (screening bolus, label), 100* / 200*;
    /// bupivacaine 2 000* / 4 000*, 2 000* / 4 000*; clonidine 100* / 200*, 100* / 200*; fentanyl
    /// 50* / 100*, 50* / 100*; sufentanil 10* / 20*, 10* / 20*. For every drug, single and bridge
    /// volume 200* / 500* µL and rate 1 000* / 6 000* µL/h; priming volume 300* / 500* µL and
    /// rate 3 000* / 15 000* µL/h.
    ///
    /// \* assumed (listed in the drug's `assumed`). Daily limits apply to the largest daily total
    /// with every allowed patient bolus taken.
    public static let standard = DrugLibrary(
        hardIncreaseFactor: 10,
        perHourEntryFactor: 24,
        lowReservoirNoticeDays: 7,
        notes: [
            "PumpLink's default drug library: concentrations in µg/mL, doses in µg, daily doses in µg/day, whole numbers.",
            "Daily-dose limits apply to the largest daily total of a program with every allowed patient bolus taken (SPEC §9.4).",
            "Figures from device labelling and intrathecal consensus guidance; the fields listed in a drug's 'assumed' are reasonable defaults, not published figures: review them locally.",
            "Only morphine and ziconotide are approved for intrathecal pain therapy in these pumps and baclofen for spasticity; the other drugs are used off-label.",
            "hardIncreaseFactor: a daily dose this many times the running one is refused (tenfold entry error); perHourEntryFactor: a step this many times the median step rate looks like a per-hour entry; lowReservoirNoticeDays: a low-reservoir alarm projected within this many days is shown.",
            "A file given to the daemon overrides this library: each drug it names is replaced whole, each top-level setting it gives replaces the default; drugs it does not name keep these figures.",
            "clinicianBolus: per kind, soft and hard limits of one bolus's dose (single, bridge; µg), volume (µL; a dose at the program's concentration) and rate (µL/h); a priming bolus is never more than the catheter volume stated with it, nor, without one, than the soft priming volume. Each single or bridge bolus also counts toward dailyDoseMicrograms with the program and the boluses of the last 24 h. A drug entry without clinicianBolus keeps these figures.",
        ],
        drugs: [
            .morphine: DrugLimits(
                label: .approved,
                approvedIndication: "pain",
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 10_000, maximum: 25_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 15_000, hard: 20_000),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 500, hard: 1_000),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 2_000, hard: 4_000),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 1_000, hard: 2_000), bridgeDose: SoftHardLimit(soft: 1_000, hard: 2_000)),
                assumed: ["maximumIncreasePercent", "patientBolusDoseMicrograms", "patientBolusDailyMicrograms", "clinicianBolus"],
                note: "Approved for intrathecal pain therapy. 10-25 mg/mL; up to about 15-20 mg/day (consensus)."
            ),
            .hydromorphone: DrugLimits(
                label: .offLabel,
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 1_000, maximum: 15_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 10_000, hard: 15_000),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 100, hard: 200),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 400, hard: 800),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 200, hard: 400), bridgeDose: SoftHardLimit(soft: 200, hard: 400)),
                assumed: [
                    "concentrationMicrogramsPerMilliliter.minimum", "dailyDoseMicrograms.hard", "maximumIncreasePercent",
                    "patientBolusDoseMicrograms", "patientBolusDailyMicrograms",
                    "clinicianBolus",
                ],
                note: "Off-label. Up to 15 mg/mL; about 10 mg/day (consensus)."
            ),
            .ziconotide: DrugLimits(
                label: .approved,
                approvedIndication: "pain",
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 25, maximum: 100, standard: [25, 100]),
                dailyDoseMicrograms: SoftHardLimit(soft: 12, hard: 19),
                startingDoseMaximumMicrogramsPerDay: 2,
                patientBolusDoseMicrograms: SoftHardLimit(soft: 0, hard: 0),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 0, hard: 0),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 0, hard: 0), bridgeDose: SoftHardLimit(soft: 2, hard: 5)),
                assumed: ["dailyDoseMicrograms.soft", "maximumIncreasePercent", "clinicianBolus.single.volumeMicroliters", "clinicianBolus.single.rateMicrolitersPerHour", "clinicianBolus.bridge", "clinicianBolus.priming"],
                note: "Approved for severe chronic pain, by continuous infusion only (no patient bolus). 25 or 100 µg/mL; start at most 2.4 µg/day, maximum 19.2 µg/day (label), as whole µg/day: 2 and 19."
            ),
            .baclofen: DrugLimits(
                label: .approved,
                approvedIndication: "spasticity",
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 50, maximum: 2_000, standard: [50, 500, 2_000]),
                dailyDoseMicrograms: SoftHardLimit(soft: 1_000, hard: 2_000),
                maximumIncreasePercent: 30,
                patientBolusDoseMicrograms: SoftHardLimit(soft: 50, hard: 100),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 200, hard: 400),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 50, hard: 100), bridgeDose: SoftHardLimit(soft: 100, hard: 200)),
                assumed: ["dailyDoseMicrograms.hard", "patientBolusDoseMicrograms", "patientBolusDailyMicrograms", "clinicianBolus.single.volumeMicroliters", "clinicianBolus.single.rateMicrolitersPerHour", "clinicianBolus.bridge", "clinicianBolus.priming"],
                note: "Approved for severe spasticity. 50, 500 or 2000 µg/mL; typical maintenance a few hundred to about 1000 µg/day; dose increases of 10-30 % a day (label)."
            ),
            .bupivacaine: DrugLimits(
                label: .offLabel,
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 1_000, maximum: 30_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 15_000, hard: 20_000),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 1_000, hard: 2_000),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 4_000, hard: 8_000),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 2_000, hard: 4_000), bridgeDose: SoftHardLimit(soft: 2_000, hard: 4_000)),
                assumed: [
                    "concentrationMicrogramsPerMilliliter.minimum", "maximumIncreasePercent",
                    "patientBolusDoseMicrograms", "patientBolusDailyMicrograms",
                    "clinicianBolus",
                ],
                note: "Off-label. Up to 30 mg/mL; about 15-20 mg/day (consensus)."
            ),
            .clonidine: DrugLimits(
                label: .offLabel,
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 100, maximum: 1_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 600, hard: 1_000),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 50, hard: 100),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 150, hard: 300),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 100, hard: 200), bridgeDose: SoftHardLimit(soft: 100, hard: 200)),
                assumed: [
                    "concentrationMicrogramsPerMilliliter.minimum", "dailyDoseMicrograms.hard", "maximumIncreasePercent",
                    "patientBolusDoseMicrograms", "patientBolusDailyMicrograms",
                    "clinicianBolus",
                ],
                note: "Off-label. Up to 1000 µg/mL; about 600 µg/day (consensus)."
            ),
            .fentanyl: DrugLimits(
                label: .offLabel,
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 50, maximum: 10_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 500, hard: 1_000),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 25, hard: 50),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 100, hard: 200),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 50, hard: 100), bridgeDose: SoftHardLimit(soft: 50, hard: 100)),
                assumed: [
                    "concentrationMicrogramsPerMilliliter", "dailyDoseMicrograms", "maximumIncreasePercent",
                    "patientBolusDoseMicrograms", "patientBolusDailyMicrograms",
                    "clinicianBolus",
                ],
                note: "Off-label. Dosed in µg/day; every figure is an assumed default."
            ),
            .sufentanil: DrugLimits(
                label: .offLabel,
                concentrationMicrogramsPerMilliliter: ConcentrationLimits(minimum: 50, maximum: 5_000),
                dailyDoseMicrograms: SoftHardLimit(soft: 100, hard: 200),
                patientBolusDoseMicrograms: SoftHardLimit(soft: 5, hard: 10),
                patientBolusDailyMicrograms: SoftHardLimit(soft: 20, hard: 40),
                clinicianBolus: .standard(singleDose: SoftHardLimit(soft: 10, hard: 20), bridgeDose: SoftHardLimit(soft: 10, hard: 20)),
                assumed: [
                    "concentrationMicrogramsPerMilliliter", "dailyDoseMicrograms", "maximumIncreasePercent",
                    "patientBolusDoseMicrograms", "patientBolusDailyMicrograms",
                    "clinicianBolus",
                ],
                note: "Off-label. Dosed in µg/day; every figure is an assumed default."
            ),
        ]
    )
}
