-- pumplink.lua: Wireshark dissector for PumpLink v1 (see tools/wireshark/README.md).
-- GENERATED FILE, do not edit: tools/codegen/generate_lua.py writes it from
-- protocol/messages.json and tools/codegen/templates/pumplink_runtime.lua.
-- Run python3 tools/codegen/generate.py after changing either.
--
-- Decodes PumpLink captures (SPEC §15): pcapng with link type 147 (LINKTYPE_USER0), one packet
-- per line candidate, i.e. the bytes between two 0x00 delimiters, still COBS-encoded. For each
-- candidate it runs the decoder of SPEC §3.4 (oversize, truncated, tooShort, checkFailed,
-- unsupportedVersion, reservedFlags, lengthMismatch, in that order), shows the unstuffed packet
-- as its own data source, the header, the authentication tag (not verifiable without the
-- pairing key) and the CRC-32C, and decodes the payload of an accepted frame field by field
-- (SPEC §4), reporting every decoding error as an expert info.
--
-- Filter names: pumplink.<header field> (pumplink.type, pumplink.request_id, pumplink.crc.status,
-- ...) and pumplink.<Owner>.<field> for payload fields, where Owner is a structure's name
-- (pumplink.Status.reservoirMicroliters) or the message name followed by Request or Response
-- (pumplink.ReadEventsRequest.maxCount). See tools/wireshark/README.md.
--
-- Wireshark 4.0 or later (Lua 5.2).

-- Definitions generated from protocol/messages.json by tools/codegen/generate_lua.py.
local DEFINITIONS_HASH = "c52f7a1c682604bb"

-- Enumerations: underlying integer type and value -> name.
local ENUMS = {
  Drug = {
    type = "u8",
    values = {
      [1] = "morphine",
      [2] = "hydromorphone",
      [3] = "ziconotide",
      [4] = "baclofen",
      [5] = "bupivacaine",
      [6] = "clonidine",
      [7] = "fentanyl",
      [8] = "sufentanil",
    },
  },
  AlarmCode = {
    type = "u8",
    values = {
      [0] = "reservoirEmpty",
      [1] = "motorStall",
      [2] = "batteryEndOfService",
      [3] = "programChecksumError",
      [4] = "lowBatteryReset",
      [8] = "reservoirLow",
      [9] = "electiveReplacement",
      [10] = "alarmClockReminder",
    },
  },
  EventKind = {
    type = "u8",
    values = {
      [1] = "pumpStarted",
      [2] = "alarmRaised",
      [3] = "alarmCleared",
      [4] = "alarmAcknowledged",
      [5] = "bolusStarted",
      [6] = "bolusCompleted",
      [7] = "bolusInterrupted",
      [8] = "patientBolusRefused",
      [9] = "programActivated",
      [10] = "refilled",
      [11] = "suspended",
      [12] = "resumed",
      [13] = "clockSet",
    },
  },
  BolusKind = {
    type = "u8",
    values = { [1] = "single", [2] = "bridge", [3] = "priming", [4] = "periodic", [5] = "patient" },
  },
  TherapyState = { type = "u8", values = { [1] = "running", [2] = "suspended", [3] = "stopped" } },
  BatteryState = { type = "u8", values = { [1] = "ok", [2] = "electiveReplacement", [3] = "endOfService" } },
  ProgramSlot = { type = "u8", values = { [0] = "active", [1] = "staged" } },
  RequestState = { type = "u8", values = { [0] = "notRemembered", [1] = "executed" } },
  PatientBolusOutcome = {
    type = "u8",
    values = {
      [1] = "started",
      [2] = "refusedLockout",
      [3] = "refusedDailyMaximum",
      [4] = "refusedNotEnabled",
      [5] = "refusedTherapyNotRunning",
      [6] = "refusedBolusInProgress",
    },
  },
  ErrorCode = {
    type = "u16",
    values = {
      [1] = "malformedPayload",
      [2] = "unknownMessageType",
      [3] = "unsupportedVersion",
      [4] = "authenticationRequired",
      [5] = "authenticationFailed",
      [6] = "staleRequestId",
      [7] = "requestIdConflict",
      [8] = "noSession",
      [9] = "invalidArgument",
      [10] = "programInvalid",
      [11] = "checksumMismatch",
      [12] = "noStagedProgram",
      [13] = "stagingIncomplete",
      [14] = "programIdMismatch",
      [15] = "volumeExceedsCapacity",
      [16] = "reservoirEmpty",
      [17] = "therapyNotRunning",
      [18] = "therapyNotSuspended",
      [19] = "bolusInProgress",
      [20] = "criticalAlarmActive",
      [21] = "busy",
    },
  },
}

-- Structures: fields in wire order. A field is {name, type, ...}: int (an enum's integer
-- type), enum, struct, of (array element), max (string/blob/array count), length (bytes),
-- range {lo, hi} (checked on decode), unit, time (how to show a time), bits (named bits),
-- hex, message_type, refers (an enum the integer names), embedded (what a blob holds),
-- definitions_hash (compared with DEFINITIONS_HASH).
local STRUCTS = {
  MessageFingerprint = {
    owner = "MessageFingerprint",
    fields = {
      { name = "messageType", type = "u8" },
      {
        name = "fingerprint",
        type = "u32",
        doc = "first 4 bytes of SHA-256 of the message's wire form, as a little-endian u32",
      },
    },
  },
  DoseStep = {
    owner = "DoseStep",
    fields = {
      {
        name = "dayMask",
        type = "u8",
        doc = "days it applies to: bit 0 Monday ... bit 6 Sunday; 127 = every day",
        range = { 1, 127 },
        bits = "Weekday",
        hex = true,
      },
      {
        name = "startMinute",
        type = "u16",
        doc = "minute of the pump's local day at which the step starts",
        range = { 0, 1439 },
        unit = "min",
        time = "minute_of_day",
      },
      {
        name = "doseRateMicrogramsPerDay",
        type = "u32",
        doc = "the dose rate during the step, as a daily rate (µg/day)",
        unit = "µg/day",
      },
    },
  },
  PeriodicBolus = {
    owner = "PeriodicBolus",
    fields = {
      {
        name = "dayMask",
        type = "u8",
        doc = "days it applies to: bit 0 Monday ... bit 6 Sunday",
        range = { 1, 127 },
        bits = "Weekday",
        hex = true,
      },
      {
        name = "startMinute",
        type = "u16",
        doc = "minute of the pump's local day",
        range = { 0, 1439 },
        unit = "min",
        time = "minute_of_day",
      },
      { name = "doseMicrograms", type = "u32", range = { 1, 4294967295 }, unit = "µg" },
      { name = "durationMinutes", type = "u16", range = { 1, 1440 }, unit = "min" },
    },
  },
  PatientBolusSettings = {
    owner = "PatientBolusSettings",
    fields = {
      { name = "doseMicrograms", type = "u32", unit = "µg" },
      { name = "durationMinutes", type = "u16", range = { 0, 1440 }, unit = "min" },
      {
        name = "lockoutMinutes",
        type = "u16",
        doc = "shortest time from the start of one patient bolus to the next",
        range = { 0, 1440 },
        unit = "min",
      },
      {
        name = "maxPerDay",
        type = "u8",
        doc = "most patient boluses in any 24 hours",
        range = { 0, 48 },
      },
    },
  },
  Program = {
    owner = "Program",
    fields = {
      {
        name = "programId",
        type = "u32",
        doc = "chosen by the programmer; unique per pump",
        range = { 1, 4294967295 },
      },
      { name = "drug", type = "enum", enum = "Drug", int = "u8" },
      {
        name = "concentrationMicrogramsPerMilliliter",
        type = "u32",
        range = { 1, 4294967295 },
        unit = "µg/mL",
      },
      { name = "lowReservoirThresholdMicroliters", type = "u32", unit = "µL" },
      {
        name = "steps",
        type = "array",
        doc = "the basal schedule; empty = no basal delivery",
        of = "DoseStep",
        max = 91,
      },
      { name = "periodicBoluses", type = "array", of = "PeriodicBolus", max = 24 },
      { name = "patientBolus", type = "struct", struct = "PatientBolusSettings" },
    },
  },
  Event = {
    owner = "Event",
    fields = {
      { name = "sequence", type = "u32" },
      {
        name = "timeMs",
        type = "u64",
        doc = "pump clock, milliseconds since 1970-01-01T00:00:00Z",
        unit = "ms",
        time = "epoch_ms",
      },
      { name = "kind", type = "enum", enum = "EventKind", int = "u8" },
      { name = "code", type = "u8", doc = "per kind (see EventKind)" },
      { name = "requestId", type = "u32", doc = "the request that caused it, 0 if none" },
      { name = "value1", type = "u32", doc = "per kind (see EventKind)" },
      { name = "value2", type = "u32", doc = "per kind (see EventKind)" },
    },
  },
  Status = {
    owner = "Status",
    fields = {
      {
        name = "pumpTimeMs",
        type = "u64",
        doc = "pump clock, milliseconds since the epoch",
        unit = "ms",
        time = "epoch_ms",
      },
      {
        name = "utcOffsetMinutes",
        type = "i16",
        doc = "pump local time minus UTC",
        range = { -900, 900 },
        unit = "min",
        time = "utc_offset",
      },
      { name = "therapyState", type = "enum", enum = "TherapyState", int = "u8" },
      { name = "reservoirMicroliters", type = "u32", unit = "µL" },
      { name = "reservoirCapacityMicroliters", type = "u32", unit = "µL" },
      {
        name = "currentDoseRateMicrogramsPerDay",
        type = "u32",
        doc = "basal rate now (0 when not running)",
        unit = "µg/day",
      },
      {
        name = "currentFlowMicrolitersPerDay",
        type = "u32",
        doc = "basal flow now (0 when not running)",
        unit = "µL/day",
      },
      {
        name = "totalDeliveredMicroliters",
        type = "u64",
        doc = "since the pump was implanted",
        unit = "µL",
      },
      {
        name = "totalDeliveredMicrograms",
        type = "u64",
        doc = "since the pump was implanted",
        unit = "µg",
      },
      { name = "activeProgramId", type = "u32", doc = "0 if no program is active" },
      { name = "activeProgramChecksum", type = "u32", hex = true },
      {
        name = "bolusActive",
        type = "u8",
        doc = "0 none, else the BolusKind being delivered",
        range = { 0, 5 },
        refers = { enum = "BolusKind", zero = "none" },
      },
      { name = "bolusRemainingMicroliters", type = "u32", unit = "µL" },
      { name = "batteryState", type = "enum", enum = "BatteryState", int = "u8" },
      { name = "batteryPercent", type = "u8", range = { 0, 100 }, unit = "%" },
      { name = "batteryDaysToEndOfService", type = "u16", unit = "days" },
      {
        name = "alarmConditionMask",
        type = "u32",
        doc = "bit n set: the condition of AlarmCode n is present",
        bits = "AlarmCode",
        hex = true,
      },
      {
        name = "alarmUnacknowledgedMask",
        type = "u32",
        doc = "bit n set: AlarmCode n was raised and is not acknowledged. Condition and unacknowledged: active; unacknowledged only: latched; condition only: acknowledged",
        bits = "AlarmCode",
        hex = true,
      },
      {
        name = "patientBolusAvailableInSeconds",
        type = "u32",
        doc = "0 if a patient bolus is allowed now; 4294967295 if none is allowed (not enabled, daily maximum reached, therapy not running)",
        unit = "s",
      },
      { name = "patientBolusesInLast24h", type = "u8" },
      { name = "lastEventSequence", type = "u32" },
      { name = "lastExecutedRequestId", type = "u32" },
    },
  },
}

-- Messages by type number: name, auth ("required" for changing requests) and the
-- request and response forms (owner: the filter name prefix; summary: Info column fields).
local MESSAGES = {
  [1] = {
    name = "Hello",
    auth = "none",
    request = {
      owner = "HelloRequest",
      fields = {
        { name = "protocolVersionMin", type = "u8", range = { 1, 255 } },
        { name = "protocolVersionMax", type = "u8", range = { 1, 255 } },
        {
          name = "capabilities",
          type = "u32",
          doc = "capability bits the host supports (see SPEC)",
          bits = "Capability",
          hex = true,
        },
        {
          name = "definitionsHash",
          type = "bytes",
          doc = "first 8 bytes of SHA-256 of the message fingerprints (SPEC §1.3)",
          length = 8,
          definitions_hash = true,
        },
        { name = "hostNonce", type = "bytes", doc = "fresh random bytes", length = 8 },
        { name = "hostTimeMs", type = "u64", unit = "ms", time = "epoch_ms" },
      },
      summary = { "protocolVersionMin", "protocolVersionMax", "capabilities" },
    },
    response = {
      owner = "HelloResponse",
      fields = {
        { name = "protocolVersion", type = "u8", doc = "the version chosen; 0 if none in common" },
        {
          name = "capabilities",
          type = "u32",
          doc = "capability bits both sides support",
          bits = "Capability",
          hex = true,
        },
        { name = "definitionsHash", type = "bytes", length = 8, definitions_hash = true },
        { name = "pumpNonce", type = "bytes", doc = "fresh random bytes", length = 8 },
        { name = "model", type = "string", max = 32 },
        { name = "serialNumber", type = "string", max = 32 },
        { name = "firmwareVersion", type = "string", max = 16 },
        { name = "reservoirCapacityMicroliters", type = "u32", unit = "µL" },
        { name = "pumpTimeMs", type = "u64", unit = "ms", time = "epoch_ms" },
        {
          name = "utcOffsetMinutes",
          type = "i16",
          range = { -900, 900 },
          unit = "min",
          time = "utc_offset",
        },
        { name = "lastExecutedRequestId", type = "u32" },
        { name = "lastEventSequence", type = "u32" },
        { name = "maxPayloadBytes", type = "u16", unit = "bytes" },
        {
          name = "receiveWindowFrames",
          type = "u8",
          doc = "how many requests the pump accepts in flight",
          range = { 1, 255 },
          unit = "frames",
        },
      },
      summary = { "protocolVersion", "capabilities", "model" },
    },
  },
  [2] = {
    name = "Ping",
    auth = "none",
    request = {
      owner = "PingRequest",
      fields = {
        { name = "echo", type = "u64" },
      },
      summary = { "echo" },
    },
    response = {
      owner = "PingResponse",
      fields = {
        { name = "echo", type = "u64" },
      },
      summary = { "echo" },
    },
  },
  [3] = {
    name = "GetStatus",
    auth = "none",
    request = { owner = "GetStatusRequest", fields = {}, summary = {} },
    response = {
      owner = "GetStatusResponse",
      fields = {
        { name = "status", type = "struct", struct = "Status" },
      },
      summary = { "status.therapyState", "status.reservoirMicroliters", "status.alarmConditionMask" },
    },
  },
  [4] = {
    name = "SetTelemetry",
    auth = "none",
    request = {
      owner = "SetTelemetryRequest",
      fields = {
        { name = "intervalMs", type = "u32", range = { 0, 3600000 }, unit = "ms" },
      },
      summary = { "intervalMs" },
    },
    response = {
      owner = "SetTelemetryResponse",
      fields = {
        { name = "intervalMs", type = "u32", unit = "ms" },
      },
      summary = { "intervalMs" },
    },
  },
  [5] = {
    name = "ReadEvents",
    auth = "none",
    request = {
      owner = "ReadEventsRequest",
      fields = {
        { name = "firstSequence", type = "u32", range = { 1, 4294967295 } },
        { name = "maxCount", type = "u8", range = { 1, 38 } },
      },
      summary = { "firstSequence", "maxCount" },
    },
    response = {
      owner = "ReadEventsResponse",
      fields = {
        { name = "oldestSequence", type = "u32", doc = "oldest event the pump still holds" },
        { name = "lastSequence", type = "u32", doc = "newest event in the log" },
        {
          name = "events",
          type = "array",
          doc = "consecutive events from max(firstSequence, oldestSequence) on",
          of = "Event",
          max = 38,
        },
      },
      summary = { "oldestSequence", "lastSequence", "events" },
    },
  },
  [6] = {
    name = "ReadProgram",
    auth = "none",
    request = {
      owner = "ReadProgramRequest",
      fields = {
        { name = "slot", type = "enum", enum = "ProgramSlot", int = "u8" },
        { name = "offset", type = "u16", unit = "bytes" },
        { name = "maxLength", type = "u16", range = { 1, 960 }, unit = "bytes" },
      },
      summary = { "slot", "offset", "maxLength" },
    },
    response = {
      owner = "ReadProgramResponse",
      fields = {
        { name = "slot", type = "enum", enum = "ProgramSlot", int = "u8" },
        { name = "programId", type = "u32", doc = "0 if the slot is empty" },
        {
          name = "checksum",
          type = "u32",
          doc = "CRC-32C of the whole encoded program",
          hex = true,
        },
        { name = "totalLength", type = "u16", unit = "bytes" },
        { name = "offset", type = "u16", unit = "bytes" },
        {
          name = "data",
          type = "blob",
          max = 960,
          embedded = { struct = "Program", when_offset = "offset", when_total = "totalLength" },
        },
      },
      summary = { "slot", "programId", "offset", "totalLength" },
    },
  },
  [7] = {
    name = "QueryRequest",
    auth = "none",
    request = {
      owner = "QueryRequestRequest",
      fields = {
        { name = "requestId", type = "u32" },
      },
      summary = { "requestId" },
    },
    response = {
      owner = "QueryRequestResponse",
      fields = {
        { name = "requestId", type = "u32" },
        { name = "state", type = "enum", enum = "RequestState", int = "u8" },
        { name = "lastExecutedRequestId", type = "u32" },
        { name = "oldestRememberedRequestId", type = "u32" },
        {
          name = "responseType",
          type = "u8",
          doc = "message type of the stored response (0 if not remembered)",
          message_type = true,
        },
        {
          name = "responsePayload",
          type = "blob",
          doc = "the stored response payload",
          max = 960,
          embedded = { response_of = "responseType" },
        },
      },
      summary = { "requestId", "state", "responseType" },
    },
  },
  [8] = {
    name = "Definitions",
    auth = "none",
    request = { owner = "DefinitionsRequest", fields = {}, summary = {} },
    response = {
      owner = "DefinitionsResponse",
      fields = {
        {
          name = "fingerprints",
          type = "array",
          doc = "one per message type the pump knows, in type order",
          of = "MessageFingerprint",
          max = 64,
        },
      },
      summary = { "fingerprints" },
    },
  },
  [16] = {
    name = "ProgramStageBegin",
    auth = "required",
    request = {
      owner = "ProgramStageBeginRequest",
      fields = {
        { name = "programId", type = "u32", range = { 1, 4294967295 } },
        { name = "totalLength", type = "u16", range = { 1, 4096 }, unit = "bytes" },
        { name = "checksum", type = "u32", hex = true },
      },
      summary = { "programId", "totalLength", "checksum" },
    },
    response = {
      owner = "ProgramStageBeginResponse",
      fields = {
        { name = "programId", type = "u32" },
        { name = "totalLength", type = "u16", unit = "bytes" },
      },
      summary = { "programId", "totalLength" },
    },
  },
  [17] = {
    name = "ProgramStageData",
    auth = "required",
    request = {
      owner = "ProgramStageDataRequest",
      fields = {
        { name = "programId", type = "u32", range = { 1, 4294967295 } },
        { name = "offset", type = "u16", unit = "bytes" },
        { name = "data", type = "blob", max = 960 },
      },
      summary = { "programId", "offset" },
    },
    response = {
      owner = "ProgramStageDataResponse",
      fields = {
        { name = "programId", type = "u32" },
        {
          name = "receivedLength",
          type = "u16",
          doc = "bytes received so far (counting each byte once)",
          unit = "bytes",
        },
      },
      summary = { "programId", "receivedLength" },
    },
  },
  [18] = {
    name = "ProgramVerify",
    auth = "none",
    request = { owner = "ProgramVerifyRequest", fields = {}, summary = {} },
    response = {
      owner = "ProgramVerifyResponse",
      fields = {
        { name = "programId", type = "u32" },
        { name = "totalLength", type = "u16", unit = "bytes" },
        {
          name = "checksum",
          type = "u32",
          doc = "CRC-32C computed by the pump over the staged bytes",
          hex = true,
        },
        {
          name = "verdict",
          type = "u16",
          doc = "0 if the staged program can be activated, else the ErrorCode that activation would give",
          refers = { enum = "ErrorCode", zero = "can be activated" },
        },
        {
          name = "problem",
          type = "u32",
          doc = "when verdict is programInvalid: which rule (see SPEC)",
        },
        {
          name = "dailyDoseMicrograms",
          type = "u32",
          doc = "the program's largest daily dose, basal and periodic boluses, over the days of the week",
          unit = "µg",
        },
      },
      summary = { "programId", "totalLength", "checksum" },
    },
  },
  [19] = {
    name = "ProgramActivate",
    auth = "required",
    request = {
      owner = "ProgramActivateRequest",
      fields = {
        { name = "programId", type = "u32", range = { 1, 4294967295 } },
        { name = "checksum", type = "u32", hex = true },
      },
      summary = { "programId", "checksum" },
    },
    response = {
      owner = "ProgramActivateResponse",
      fields = {
        { name = "programId", type = "u32" },
        { name = "checksum", type = "u32", hex = true },
        { name = "activatedAtMs", type = "u64", unit = "ms", time = "epoch_ms" },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "programId", "checksum", "activatedAtMs" },
    },
  },
  [20] = {
    name = "Refill",
    auth = "required",
    request = {
      owner = "RefillRequest",
      fields = {
        { name = "aspiratedMicroliters", type = "u32", unit = "µL" },
        { name = "newVolumeMicroliters", type = "u32", unit = "µL" },
      },
      summary = { "aspiratedMicroliters", "newVolumeMicroliters" },
    },
    response = {
      owner = "RefillResponse",
      fields = {
        {
          name = "expectedMicroliters",
          type = "u32",
          doc = "what the pump computed was left",
          unit = "µL",
        },
        { name = "aspiratedMicroliters", type = "u32", unit = "µL" },
        {
          name = "discrepancy",
          type = "u8",
          doc = "1 if |expected - aspirated| exceeds 1000 µL (20 mL pump) or 2000 µL (40 mL pump)",
          range = { 0, 1 },
        },
        { name = "reservoirMicroliters", type = "u32", unit = "µL" },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "expectedMicroliters", "aspiratedMicroliters", "discrepancy" },
    },
  },
  [21] = {
    name = "SetClock",
    auth = "required",
    request = {
      owner = "SetClockRequest",
      fields = {
        { name = "timeMs", type = "u64", unit = "ms", time = "epoch_ms" },
        {
          name = "utcOffsetMinutes",
          type = "i16",
          range = { -900, 900 },
          unit = "min",
          time = "utc_offset",
        },
      },
      summary = { "timeMs", "utcOffsetMinutes" },
    },
    response = {
      owner = "SetClockResponse",
      fields = {
        { name = "previousTimeMs", type = "u64", unit = "ms", time = "epoch_ms" },
        { name = "timeMs", type = "u64", unit = "ms", time = "epoch_ms" },
        { name = "utcOffsetMinutes", type = "i16", unit = "min", time = "utc_offset" },
      },
      summary = { "previousTimeMs", "timeMs", "utcOffsetMinutes" },
    },
  },
  [22] = {
    name = "AcknowledgeAlarms",
    auth = "required",
    request = {
      owner = "AcknowledgeAlarmsRequest",
      fields = {
        { name = "alarmMask", type = "u32", bits = "AlarmCode", hex = true },
      },
      summary = { "alarmMask" },
    },
    response = {
      owner = "AcknowledgeAlarmsResponse",
      fields = {
        { name = "alarmConditionMask", type = "u32", bits = "AlarmCode", hex = true },
        { name = "alarmUnacknowledgedMask", type = "u32", bits = "AlarmCode", hex = true },
      },
      summary = { "alarmConditionMask", "alarmUnacknowledgedMask" },
    },
  },
  [23] = {
    name = "Suspend",
    auth = "required",
    request = { owner = "SuspendRequest", fields = {}, summary = {} },
    response = {
      owner = "SuspendResponse",
      fields = {
        { name = "therapyState", type = "enum", enum = "TherapyState", int = "u8" },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "therapyState", "eventSequence" },
    },
  },
  [24] = {
    name = "Resume",
    auth = "required",
    request = { owner = "ResumeRequest", fields = {}, summary = {} },
    response = {
      owner = "ResumeResponse",
      fields = {
        { name = "therapyState", type = "enum", enum = "TherapyState", int = "u8" },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "therapyState", "eventSequence" },
    },
  },
  [25] = {
    name = "ClinicianBolus",
    auth = "required",
    request = {
      owner = "ClinicianBolusRequest",
      fields = {
        { name = "kind", type = "enum", enum = "BolusKind", int = "u8" },
        {
          name = "doseMicrograms",
          type = "u32",
          doc = "single and bridge: the dose; priming: 0",
          unit = "µg",
        },
        {
          name = "volumeMicroliters",
          type = "u32",
          doc = "priming: the volume; single and bridge: 0",
          unit = "µL",
        },
        { name = "durationMinutes", type = "u16", range = { 1, 1440 }, unit = "min" },
      },
      summary = { "kind", "doseMicrograms", "volumeMicroliters" },
    },
    response = {
      owner = "ClinicianBolusResponse",
      fields = {
        { name = "kind", type = "enum", enum = "BolusKind", int = "u8" },
        { name = "doseMicrograms", type = "u32", unit = "µg" },
        { name = "volumeMicroliters", type = "u32", unit = "µL" },
        { name = "startedAtMs", type = "u64", unit = "ms", time = "epoch_ms" },
        { name = "endsAtMs", type = "u64", unit = "ms", time = "epoch_ms" },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "kind", "doseMicrograms", "volumeMicroliters" },
    },
  },
  [26] = {
    name = "PatientBolus",
    auth = "required",
    request = { owner = "PatientBolusRequest", fields = {}, summary = {} },
    response = {
      owner = "PatientBolusResponse",
      fields = {
        { name = "outcome", type = "enum", enum = "PatientBolusOutcome", int = "u8" },
        { name = "doseMicrograms", type = "u32", unit = "µg" },
        { name = "bolusesInLast24h", type = "u8" },
        {
          name = "nextAllowedInSeconds",
          type = "u32",
          doc = "0 if another is allowed now, 4294967295 if none",
          unit = "s",
        },
        { name = "eventSequence", type = "u32" },
      },
      summary = { "outcome", "doseMicrograms", "bolusesInLast24h" },
    },
  },
  [127] = {
    name = "Error",
    auth = "none",
    response = {
      owner = "ErrorResponse",
      fields = {
        { name = "requestType", type = "u8", message_type = true },
        { name = "code", type = "enum", enum = "ErrorCode", int = "u16" },
        { name = "detail", type = "u32" },
      },
      summary = { "code", "requestType", "detail" },
    },
  },
}

-- Named bits of mask fields (bit index -> name), with the mask's width in bits.
local BITSETS = {
  AlarmCode = {
    prefix = "alarm",
    width = 32,
    bits = {
      {
        bit = 0,
        name = "reservoirEmpty",
        doc = "critical: the pump can no longer deliver; delivery stopped",
      },
      {
        bit = 1,
        name = "motorStall",
        doc = "critical: the pump mechanism does not turn; delivery stopped",
      },
      {
        bit = 2,
        name = "batteryEndOfService",
        doc = "critical: the battery is exhausted; delivery stopped",
      },
      {
        bit = 3,
        name = "programChecksumError",
        doc = "critical: the stored program failed its checksum; delivery stopped",
      },
      {
        bit = 4,
        name = "lowBatteryReset",
        doc = "critical: the pump restarted after a battery brown-out; delivery stopped until acknowledged",
      },
      {
        bit = 8,
        name = "reservoirLow",
        doc = "non-critical: reservoir at or below the program's low-reservoir threshold",
      },
      {
        bit = 9,
        name = "electiveReplacement",
        doc = "non-critical: battery at the elective replacement indicator (about 90 days before end of service)",
      },
      {
        bit = 10,
        name = "alarmClockReminder",
        doc = "non-critical: a clinician reminder (for example the planned refill date) is due",
      },
    },
  },
  Weekday = {
    prefix = "day",
    width = 8,
    bits = {
      { bit = 0, name = "monday" },
      { bit = 1, name = "tuesday" },
      { bit = 2, name = "wednesday" },
      { bit = 3, name = "thursday" },
      { bit = 4, name = "friday" },
      { bit = 5, name = "saturday" },
      { bit = 6, name = "sunday" },
    },
  },
  Capability = {
    prefix = "capability",
    width = 32,
    bits = {
      {
        bit = 0,
        name = "telemetryStreaming",
        doc = "SetTelemetry and unsolicited Status (SPEC §5.10)",
      },
      {
        bit = 1,
        name = "windowedBulkTransfer",
        doc = "more than one request in flight, up to receiveWindowFrames (SPEC §7.7)",
      },
      { bit = 2, name = "requestRecordQuery", doc = "QueryRequest (SPEC §6.9, §7.6)" },
    },
  },
}

-- Event.code names a value of this enum, by Event.kind (from the EventKind docs).
local EVENT_CODE_ENUM = {
  [2] = "AlarmCode",
  [3] = "AlarmCode",
  [4] = "AlarmCode",
  [5] = "BolusKind",
  [6] = "BolusKind",
  [7] = "BolusKind",
  [8] = "PatientBolusOutcome",
}

-- What Error.detail holds, by ErrorCode name (SPEC §13).
local ERROR_DETAIL = {
  staleRequestId = { text = "the pump's lastExecutedRequestId" },
  invalidArgument = { request_field = true, text = "index of the offending request field" },
  programInvalid = { text = "rule number of SPEC §9.5" },
  checksumMismatch = { hex = true, text = "the CRC-32C the pump computed" },
  stagingIncomplete = { text = "bytes received" },
  programIdMismatch = { text = "the staged program's id" },
  volumeExceedsCapacity = { text = "reservoir capacity in µL" },
  reservoirEmpty = { text = "µL in the reservoir" },
  therapyNotRunning = { enum = "TherapyState" },
  therapyNotSuspended = { enum = "TherapyState" },
  bolusInProgress = { enum = "BolusKind" },
  criticalAlarmActive = { bits = "AlarmCode", text = "alarmConditionMask & 0xFF" },
  busy = { text = "ms to wait before retrying (0: unspecified)" },
}

-- Runtime ------------------------------------------------------------------------------------

local bit32 = bit32
if bit32 == nil then
    -- Lua 5.2 builds without bit32: Wireshark's `bit` library, results made unsigned.
    local function u(x) return x % 4294967296 end
    bit32 = {
        band = function(a, b) return u(bit.band(a, b)) end,
        bor = function(a, b) return u(bit.bor(a, b)) end,
        bxor = function(a, b) return u(bit.bxor(a, b)) end,
        bnot = function(a) return u(bit.bnot(a)) end,
        rshift = function(a, n) return u(bit.rshift(a, n)) end,
        lshift = function(a, n) return u(bit.lshift(a, n)) end,
    }
end

-- Frame layout (SPEC §3.1, §3.5).
local HEADER_LENGTH = 9
local TAG_LENGTH = 16
local CHECK_LENGTH = 4
local MAX_PAYLOAD = 1024
local MIN_PACKET = HEADER_LENGTH + CHECK_LENGTH
local MAX_PACKET = HEADER_LENGTH + MAX_PAYLOAD + TAG_LENGTH + CHECK_LENGTH
local FLAG_RESPONSE = 0x01
local FLAG_AUTHENTICATED = 0x02
local FLAG_SEALED = 0x04
local FLAGS_RESERVED = 0xF8
local COUNTER_LENGTH = 8

local INT_SIZE = { u8 = 1, u16 = 2, u32 = 4, u64 = 8, i16 = 2 }

-- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 (SPEC §3.3).
local CRC_TABLE = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit32.band(c, 1) ~= 0 then
            c = bit32.bxor(bit32.rshift(c, 1), 0x82F63B78)
        else
            c = bit32.rshift(c, 1)
        end
    end
    CRC_TABLE[i] = c
end

local function crc32c(bytes, first, last)
    local crc = 0xFFFFFFFF
    for i = first, last do
        crc = bit32.bxor(CRC_TABLE[bit32.band(bit32.bxor(crc, bytes[i]), 0xFF)], bit32.rshift(crc, 8))
    end
    return bit32.bxor(crc, 0xFFFFFFFF)
end

-- COBS decoding of one candidate, exactly as the stream decoder of SPEC §3.4 does it.
local function cobs_decode(raw)
    local out, n = {}, 0
    local code, remaining, overflow = 0, 0, false
    local blocks, last_code_at, delimiter_at = 0, nil, nil
    local function append(x)
        if n == MAX_PACKET then
            overflow = true
        else
            n = n + 1
            out[n] = x
        end
    end
    for i = 1, #raw do
        local b = raw:byte(i)
        if b == 0 then
            -- Not in a conforming capture (delimiters are not recorded); decode up to it.
            delimiter_at = i - 1
            break
        end
        if not overflow then
            if remaining == 0 then
                if code ~= 0 and code ~= 0xFF then append(0) end
                code, remaining = b, b - 1
                blocks, last_code_at = blocks + 1, i - 1
            else
                append(b)
                remaining = remaining - 1
            end
        end
    end
    return {
        bytes = out, length = n, overflow = overflow, remaining = remaining, code = code,
        blocks = blocks, last_code_at = last_code_at, delimiter_at = delimiter_at,
    }
end

local function bytes_to_string(bytes, first, last)
    local parts = {}
    local i = first
    while i <= last do
        local j = math.min(i + 3999, last)
        parts[#parts + 1] = string.char(table.unpack(bytes, i, j))
        i = j + 1
    end
    return table.concat(parts)
end

-- Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). Returns
-- whether `s` is valid and a copy with each byte of an invalid sequence replaced by "?" (same
-- length in bytes, so Wireshark's string display never runs past the field).
local function check_utf8(s)
    local out, valid = {}, true
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        local need, lo, hi = -1, 0x80, 0xBF
        if c < 0x80 then
            need = 0
        elseif c >= 0xC2 and c <= 0xDF then
            need = 1
        elseif c == 0xE0 then
            need, lo = 2, 0xA0
        elseif (c >= 0xE1 and c <= 0xEC) or c == 0xEE or c == 0xEF then
            need = 2
        elseif c == 0xED then
            need, hi = 2, 0x9F
        elseif c == 0xF0 then
            need, lo = 3, 0x90
        elseif c >= 0xF1 and c <= 0xF3 then
            need = 3
        elseif c == 0xF4 then
            need, hi = 3, 0x8F
        end
        local ok = need >= 0
        for k = 1, math.max(need, 0) do
            local d = s:byte(i + k)
            if d == nil or d < (k == 1 and lo or 0x80) or d > (k == 1 and hi or 0xBF) then
                ok = false
                break
            end
        end
        if ok then
            out[#out + 1] = s:sub(i, i + need)
            i = i + need + 1
        else
            out[#out + 1] = "?"
            valid = false
            i = i + 1
        end
    end
    return valid, table.concat(out)
end

local function fmt_int(v)
    return string.format("%d", v)
end

local function fmt_hex32(v)
    return string.format("0x%08x", v)
end

-- Protocol, fields and expert infos -----------------------------------------------------------

local pumplink = Proto("pumplink", "PumpLink")

local MESSAGE_NAMES = {}
local MESSAGE_TYPE_VALUES = { [0] = "none" } -- for fields that name a message type (0: none)
for number, message in pairs(MESSAGES) do
    MESSAGE_NAMES[number] = message.name
    MESSAGE_TYPE_VALUES[number] = message.name
end

local CHECK_STATUS = { [0] = "Bad", [1] = "Good", [2] = "Unverified" }

local hf = {
    outcome = ProtoField.string("pumplink.outcome", "Decoder outcome", base.ASCII,
        "frame, or why the candidate was discarded (SPEC §3.4)"),
    direction = ProtoField.string("pumplink.direction", "Direction", base.UNICODE,
        "from the response flag: Host → Pump or Pump → Host"),
    message = ProtoField.string("pumplink.message", "Message", base.ASCII,
        "message name and form (request or response)"),
    candidate_length = ProtoField.uint32("pumplink.cobs.length", "COBS candidate length", base.UNIT_STRING,
        { " byte", " bytes" }),
    cobs_blocks = ProtoField.uint32("pumplink.cobs.blocks", "COBS blocks", base.DEC),
    cobs_code = ProtoField.uint8("pumplink.cobs.code", "Last COBS code byte", base.HEX,
        nil, nil, "announces (value - 1) data bytes"),
    packet_length = ProtoField.uint32("pumplink.packet_length", "Packet length", base.UNIT_STRING,
        { " byte", " bytes" }, nil, "length of the COBS-decoded packet (or of what was decoded)"),
    header = ProtoField.none("pumplink.header", "Header"),
    version = ProtoField.uint8("pumplink.version", "Version", base.DEC),
    flags = ProtoField.uint8("pumplink.flags", "Flags", base.HEX),
    flag_response = ProtoField.bool("pumplink.flags.response", "Response (sent by the pump)", 8,
        nil, FLAG_RESPONSE),
    flag_authenticated = ProtoField.bool("pumplink.flags.authenticated", "Authenticated (tag present)", 8,
        nil, FLAG_AUTHENTICATED),
    flag_sealed = ProtoField.bool("pumplink.flags.sealed", "Sealed (version 2: encrypted payload)", 8,
        nil, FLAG_SEALED),
    flag_reserved = ProtoField.uint8("pumplink.flags.reserved", "Reserved", base.HEX, nil, FLAGS_RESERVED,
        "bits 3-7, must be 0"),
    counter = ProtoField.uint64("pumplink.counter", "Frame counter", base.DEC, nil, nil,
        "the sender's frame counter of a sealed frame; the AEAD nonce (SPEC §8.4)"),
    ciphertext = ProtoField.bytes("pumplink.ciphertext", "Sealed payload",
        "ChaCha20-Poly1305 ciphertext; opening it needs the session keys (SPEC §8.3)"),
    type = ProtoField.uint8("pumplink.type", "Message type", base.DEC, MESSAGE_NAMES),
    request_id = ProtoField.uint32("pumplink.request_id", "Request id", base.DEC),
    payload_length = ProtoField.uint16("pumplink.payload_length", "Payload length", base.UNIT_STRING,
        { " byte", " bytes" }),
    payload = ProtoField.bytes("pumplink.payload", "Payload"),
    trailing = ProtoField.bytes("pumplink.trailing", "Trailing bytes"),
    message_error = ProtoField.string("pumplink.message_error", "Message decoding error", base.ASCII,
        "the first payload decoding error: error name and details (SPEC §4)"),
    tag = ProtoField.bytes("pumplink.tag", "Authentication tag"),
    tag_status = ProtoField.string("pumplink.tag.status", "Tag status"),
    crc = ProtoField.uint32("pumplink.crc", "CRC-32C", base.HEX),
    crc_computed = ProtoField.uint32("pumplink.crc.computed", "Computed CRC-32C", base.HEX),
    crc_status = ProtoField.uint8("pumplink.crc.status", "CRC-32C status", base.DEC, CHECK_STATUS),
    embedded = ProtoField.string("pumplink.embedded", "Decoded content"),
}

local SEVERITY, GROUP = expert.severity, expert.group
local ef = {
    oversize = ProtoExpert.new("pumplink.expert.oversize", "Oversize candidate", GROUP.MALFORMED, SEVERITY.ERROR),
    truncated = ProtoExpert.new("pumplink.expert.truncated", "Truncated COBS block", GROUP.MALFORMED, SEVERITY.ERROR),
    delimiter = ProtoExpert.new("pumplink.expert.delimiter", "Delimiter inside a candidate", GROUP.MALFORMED,
        SEVERITY.ERROR),
    too_short = ProtoExpert.new("pumplink.expert.too_short", "Packet too short", GROUP.MALFORMED, SEVERITY.ERROR),
    check_failed = ProtoExpert.new("pumplink.expert.check_failed", "Bad CRC-32C", GROUP.CHECKSUM, SEVERITY.ERROR),
    unsupported_version = ProtoExpert.new("pumplink.expert.unsupported_version", "Unsupported version",
        GROUP.PROTOCOL, SEVERITY.ERROR),
    reserved_flags = ProtoExpert.new("pumplink.expert.reserved_flags", "Reserved flag set", GROUP.PROTOCOL,
        SEVERITY.ERROR),
    length_mismatch = ProtoExpert.new("pumplink.expert.length_mismatch", "Length mismatch", GROUP.MALFORMED,
        SEVERITY.ERROR),
    message_error = ProtoExpert.new("pumplink.expert.message_error", "Payload decoding error", GROUP.MALFORMED,
        SEVERITY.ERROR),
    capture_truncated = ProtoExpert.new("pumplink.expert.capture_truncated", "Candidate cut short by the capture",
        GROUP.MALFORMED, SEVERITY.WARN),
    auth_missing = ProtoExpert.new("pumplink.expert.auth_missing", "Frame should be authenticated",
        GROUP.SECURITY, SEVERITY.WARN),
    auth_ignored = ProtoExpert.new("pumplink.expert.auth_ignored", "Tag is ignored on this frame",
        GROUP.SECURITY, SEVERITY.NOTE),
    undefined_bits = ProtoExpert.new("pumplink.expert.undefined_bits", "Undefined bits set", GROUP.PROTOCOL,
        SEVERITY.WARN),
    embedded_error = ProtoExpert.new("pumplink.expert.embedded_error", "Embedded content does not decode",
        GROUP.MALFORMED, SEVERITY.WARN),
    error_response = ProtoExpert.new("pumplink.expert.error_response", "Error response", GROUP.RESPONSE_CODE,
        SEVERITY.NOTE),
}

-- Payload fields: one ProtoField per Owner.field, created from the definitions.
local PF = {}       -- "Owner.field" -> ProtoField
local PF_LENGTH = {} -- "Owner.field" -> the count field of a string, blob or array
local PF_BITS = {}  -- bitset name -> { {bit, ProtoField} }

local PROTO_INT = {
    u8 = ProtoField.uint8, u16 = ProtoField.uint16, u32 = ProtoField.uint32,
    u64 = ProtoField.uint64, i16 = ProtoField.int16,
}

local function description(f)
    local parts = {}
    if f.doc then parts[#parts + 1] = f.doc end
    if f.range then parts[#parts + 1] = "range " .. fmt_int(f.range[1]) .. "..." .. fmt_int(f.range[2]) end
    return #parts > 0 and table.concat(parts, "; ") or nil
end

local function make_field(owner, f)
    local key = owner .. "." .. f.name
    local abbr = "pumplink." .. key
    local t = f.type
    local desc = description(f)
    if t == "enum" then
        PF[key] = PROTO_INT[f.int](abbr, f.name, base.DEC, ENUMS[f.enum].values, nil, desc)
    elseif PROTO_INT[t] then
        if f.unit then
            PF[key] = PROTO_INT[t](abbr, f.name, base.UNIT_STRING, { " " .. f.unit }, nil, desc)
        elseif f.hex then
            PF[key] = PROTO_INT[t](abbr, f.name, base.HEX, nil, nil, desc)
        elseif f.message_type then
            PF[key] = PROTO_INT[t](abbr, f.name, base.DEC, MESSAGE_TYPE_VALUES, nil, desc)
        else
            PF[key] = PROTO_INT[t](abbr, f.name, base.DEC, nil, nil, desc)
        end
    elseif t == "bytes" or t == "blob" then
        PF[key] = ProtoField.bytes(abbr, f.name, base.NONE, desc)
    elseif t == "string" then
        PF[key] = ProtoField.string(abbr, f.name, base.UNICODE, desc)
    elseif t == "struct" then
        PF[key] = ProtoField.none(abbr, f.name, desc)
    elseif t == "array" then
        PF[key] = ProtoField.none(abbr, f.name, desc)
        PF[key .. ".element"] = ProtoField.none(abbr .. ".element", f.of, "an element of " .. f.name)
    end
    if t == "string" then
        PF_LENGTH[key] = ProtoField.uint8(abbr .. ".length", "length", base.UNIT_STRING, { " byte", " bytes" })
    elseif t == "blob" then
        PF_LENGTH[key] = ProtoField.uint16(abbr .. ".length", "length", base.UNIT_STRING, { " byte", " bytes" })
    elseif t == "array" then
        PF_LENGTH[key] = ProtoField.uint8(abbr .. ".count", "count", base.UNIT_STRING,
            { " element", " elements" })
    end
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
end

for _, name in ipairs(sorted_keys(STRUCTS)) do
    for _, f in ipairs(STRUCTS[name].fields) do make_field(STRUCTS[name].owner, f) end
end
for _, number in ipairs(sorted_keys(MESSAGES)) do
    for _, direction in ipairs({ "request", "response" }) do
        local form = MESSAGES[number][direction]
        if form then
            for _, f in ipairs(form.fields) do make_field(form.owner, f) end
        end
    end
end
for _, name in ipairs(sorted_keys(BITSETS)) do
    local set = BITSETS[name]
    PF_BITS[name] = {}
    for _, b in ipairs(set.bits) do
        local mask = 2 ^ b.bit
        local field = ProtoField.bool("pumplink." .. set.prefix .. "." .. b.name, b.name, set.width, nil, mask, b.doc)
        table.insert(PF_BITS[name], { bit = b.bit, field = field })
    end
end

do
    local all = {}
    for _, v in pairs(hf) do all[#all + 1] = v end
    for _, k in ipairs(sorted_keys(PF)) do all[#all + 1] = PF[k] end
    for _, k in ipairs(sorted_keys(PF_LENGTH)) do all[#all + 1] = PF_LENGTH[k] end
    for _, name in ipairs(sorted_keys(PF_BITS)) do
        for _, b in ipairs(PF_BITS[name]) do all[#all + 1] = b.field end
    end
    pumplink.fields = all
    local experts = {}
    for _, v in pairs(ef) do experts[#experts + 1] = v end
    pumplink.experts = experts
end

-- Payload decoding (SPEC §4) ------------------------------------------------------------------

-- A decoding context: the packet tvb, where the payload starts in it and how long it is, the
-- read position (relative to the payload), the first error, and the values for the Info column.
local function new_context(tvb, base_offset, length, embedded)
    return { tvb = tvb, base = base_offset, length = length, pos = 0, embedded = embedded,
             first_error = nil, errors = 0, values = {} }
end

-- Reports a decoding error: `detail` is a list of {key, value}; the first error of a payload is
-- the one the decoder would report and goes to pumplink.message_error.
local function report(ctx, item, kind, detail)
    local parts = {}
    for _, kv in ipairs(detail) do parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]) end
    local text = kind .. ": " .. table.concat(parts, " ")
    ctx.errors = ctx.errors + 1
    if ctx.first_error == nil then ctx.first_error = text end
    if ctx.embedded then
        item:add_proto_expert_info(ef.embedded_error, ctx.embedded .. ": " .. text)
    else
        item:add_proto_expert_info(ef.message_error, text)
    end
end

-- Checks that `size` more bytes are there; reports truncated (SPEC §4 rule 1) if not.
local function need(ctx, tree, size)
    local available = ctx.length - ctx.pos
    if size <= available then return true end
    report(ctx, tree, "truncated", { { "offset", ctx.pos }, { "needed", size - available } })
    return false
end

local function read_number(r, t)
    if t == "u64" then
        local v = r:le_uint64()
        return v:tonumber(), tostring(v)
    elseif t == "i16" then
        local v = r:le_int()
        return v, fmt_int(v)
    end
    local v = r:le_uint()
    return v, fmt_int(v)
end

local function time_text(f, v)
    if f.time == "epoch_ms" then
        local ok, text = pcall(os.date, "!%Y-%m-%d %H:%M:%S", math.floor(v / 1000))
        if ok and text then return string.format("%s.%03d UTC", text, v % 1000) end
    elseif f.time == "minute_of_day" then
        return string.format("%02d:%02d", math.floor(v / 60), v % 60)
    elseif f.time == "utc_offset" then
        local a = math.abs(v)
        return string.format("UTC%s%02d:%02d", v < 0 and "-" or "+", math.floor(a / 60), a % 60)
    end
    return nil
end

local function bit_names(set_name, v)
    local names = {}
    for _, b in ipairs(BITSETS[set_name].bits) do
        if bit32.band(v, 2 ^ b.bit) ~= 0 then names[#names + 1] = b.name end
    end
    return names
end

local function enum_name(enum, v)
    return ENUMS[enum] and ENUMS[enum].values[v]
end

local decode_fields -- forward

-- Annotations of integers whose meaning depends on other fields (Event.code, Error.detail).
local function annotate(owner, f, v, item, scope)
    if owner == "Event" and f.name == "code" and scope.kind then
        local enum = EVENT_CODE_ENUM[scope.kind]
        local name = enum and enum_name(enum, v)
        if name then item:append_text(" (" .. enum .. " " .. name .. ")") end
    elseif owner == "ErrorResponse" and f.name == "detail" and scope.code then
        local code = enum_name("ErrorCode", scope.code)
        local spec = code and ERROR_DETAIL[code]
        if not spec then return end
        local text
        if spec.enum then
            text = spec.enum .. " " .. (enum_name(spec.enum, v) or "unknown")
        elseif spec.hex then
            text = spec.text .. ": " .. fmt_hex32(v)
        elseif spec.bits then
            local names = bit_names(spec.bits, v)
            text = spec.text .. ": " .. (#names > 0 and table.concat(names, ", ") or "none")
        elseif spec.request_field then
            local message = MESSAGES[scope.requestType]
            local form = message and message.request
            local field = form and form.fields[v + 1]
            text = spec.text .. (field and (": " .. form.owner .. "." .. field.name) or "")
        else
            text = spec.text
        end
        item:append_text(" [" .. text .. "]")
    end
end

local function decode_integer(ctx, tree, owner, f, scope)
    local t = f.type == "enum" and f.int or f.type
    local size = INT_SIZE[t]
    if not need(ctx, tree, size) then return false end
    local r = ctx.tvb(ctx.base + ctx.pos, size)
    ctx.pos = ctx.pos + size
    local key = owner .. "." .. f.name
    local item = tree:add_le(PF[key], r)
    local v, text = read_number(r, t)
    scope[f.name] = v
    if f.type == "enum" then
        local name = enum_name(f.enum, v)
        if name == nil then
            report(ctx, item, "invalidEnum", { { "field", key }, { "value", text } })
            text = "unknown " .. f.enum .. " " .. text
        else
            text = name
        end
    elseif f.unit then
        text = text .. " " .. f.unit
    elseif f.hex then
        text = string.format("0x%0" .. (size * 2) .. "x", v)
    end
    if f.range and (v < f.range[1] or v > f.range[2]) then
        item:append_text(string.format(" [out of range %s...%s]", fmt_int(f.range[1]), fmt_int(f.range[2])))
        report(ctx, item, "outOfRange", { { "field", key }, { "value", fmt_int(v) } })
    end
    if f.time then
        local extra = time_text(f, v)
        if extra then item:append_text(" (" .. extra .. ")") end
    end
    if f.message_type then
        if v ~= 0 and MESSAGE_NAMES[v] then text = MESSAGE_NAMES[v] end
    end
    if f.refers then
        local name = v == 0 and f.refers.zero or enum_name(f.refers.enum, v)
        item:append_text(" (" .. (name or ("unknown " .. f.refers.enum)) .. ")")
    end
    if f.bits then
        local set = BITSETS[f.bits]
        local defined = 0
        for _, b in ipairs(PF_BITS[f.bits]) do
            item:add_le(b.field, r)
            defined = defined + 2 ^ b.bit
        end
        local names = bit_names(f.bits, v)
        if #names > 0 then item:append_text(" (" .. table.concat(names, ", ") .. ")") end
        local undefined = bit32.band(v, bit32.bnot(defined))
        if set.width < 32 then undefined = bit32.band(undefined, 2 ^ set.width - 1) end
        if undefined ~= 0 then
            item:add_proto_expert_info(ef.undefined_bits, string.format("%s: undefined bits 0x%x set", key, undefined))
        end
    end
    annotate(owner, f, v, item, scope)
    return true, text
end

-- Decodes a blob's content when the definitions say what it holds (SPEC §6.8, §6.9).
local function decode_embedded(ctx, item, f, scope, data_offset, count)
    local spec = f.embedded
    local fields, owner, label
    if spec.struct then
        if scope[spec.when_offset] ~= 0 or scope[spec.when_total] ~= count or count == 0 then return end
        fields, owner, label = STRUCTS[spec.struct].fields, STRUCTS[spec.struct].owner, spec.struct
    elseif spec.response_of then
        local message = MESSAGES[scope[spec.response_of]]
        if message == nil or message.response == nil then return end
        fields, owner, label = message.response.fields, message.response.owner, message.name .. " response"
    else
        return
    end
    local sub = new_context(ctx.tvb, ctx.base + data_offset, count, label)
    local r = ctx.tvb(ctx.base + data_offset, count)
    local tree = item:add(hf.embedded, r, label)
    tree:set_generated()
    if decode_fields(sub, tree, owner, fields, {}) and sub.pos < sub.length then
        local rest = tree:add(hf.trailing, ctx.tvb(sub.base + sub.pos, sub.length - sub.pos))
        report(sub, rest, "trailingBytes", { { "count", sub.length - sub.pos } })
    end
end

local function decode_field(ctx, tree, owner, f, scope, prefix)
    local t = f.type
    local key = owner .. "." .. f.name
    if INT_SIZE[t] or t == "enum" then
        return decode_integer(ctx, tree, owner, f, scope)
    elseif t == "bytes" then
        if not need(ctx, tree, f.length) then return false end
        local r = ctx.tvb(ctx.base + ctx.pos, f.length)
        ctx.pos = ctx.pos + f.length
        local item = tree:add(PF[key], r)
        local hex = tostring(r:bytes()):lower()
        if f.definitions_hash then
            item:append_text(hex == DEFINITIONS_HASH and " (the definitions this dissector was generated from)"
                or " (not the definitions of this dissector, " .. DEFINITIONS_HASH .. ")")
        end
        return true, hex
    elseif t == "string" or t == "blob" then
        local count_size = t == "string" and 1 or 2
        local start = ctx.pos
        if not need(ctx, tree, count_size) then return false end
        local count_range = ctx.tvb(ctx.base + start, count_size)
        local count = count_range:le_uint()
        ctx.pos = ctx.pos + count_size
        if count > f.max then
            local item = tree:add_le(PF_LENGTH[key], count_range)
            item:prepend_text(f.name .. " ")
            report(ctx, item, "tooLong", { { "field", key }, { "count", count }, { "max", f.max } })
            return false
        end
        if not need(ctx, tree, count) then return false end
        local r = ctx.tvb(ctx.base + ctx.pos, count)
        local data_offset = ctx.pos
        ctx.pos = ctx.pos + count
        local item, text
        if t == "string" then
            local valid, shown = check_utf8(r:raw())
            item = tree:add(PF[key], ctx.tvb(ctx.base + start, count_size + count), shown)
            text = '"' .. shown .. '"'
            if not valid then
                report(ctx, item, "invalidUTF8", { { "field", key } })
            end
        else
            item = tree:add(PF[key], r)
            if count == 0 then item:set_text(f.name .. ": (empty)") end
            text = fmt_int(count) .. " bytes"
        end
        item:add_le(PF_LENGTH[key], count_range)
        if t == "blob" and f.embedded then
            decode_embedded(ctx, item, f, scope, data_offset, count)
        end
        return true, text
    elseif t == "struct" then
        local start = ctx.pos
        local item = tree:add(PF[key], ctx.tvb(ctx.base + start, 0))
        item:append_text(": " .. f.struct)
        local ok = decode_fields(ctx, item, STRUCTS[f.struct].owner, STRUCTS[f.struct].fields, {},
            prefix and (prefix .. f.name .. ".") or nil)
        item:set_len(ctx.pos - start)
        return ok, nil
    elseif t == "array" then
        local start = ctx.pos
        if not need(ctx, tree, 1) then return false end
        local count_range = ctx.tvb(ctx.base + start, 1)
        local count = count_range:le_uint()
        ctx.pos = ctx.pos + 1
        local item = tree:add(PF[key], ctx.tvb(ctx.base + start, 1))
        item:append_text(string.format(": %d × %s", count, f.of))
        item:add_le(PF_LENGTH[key], count_range)
        if count > f.max then
            report(ctx, item, "tooLong", { { "field", key }, { "count", count }, { "max", f.max } })
            return false
        end
        local struct = STRUCTS[f.of]
        for i = 1, count do
            local el_start = ctx.pos
            local el = item:add(PF[key .. ".element"], ctx.tvb(ctx.base + el_start, 0))
            el:set_text(string.format("%s [%d]", f.of, i - 1))
            local ok = decode_fields(ctx, el, struct.owner, struct.fields, {})
            el:set_len(ctx.pos - el_start)
            if not ok then
                item:set_len(ctx.pos - start)
                return false
            end
        end
        item:set_len(ctx.pos - start)
        return true, fmt_int(count)
    end
    error("unsupported field type " .. tostring(t))
end

-- Decodes `fields` in order; false after an error that stops decoding (truncated, tooLong).
-- Values are kept for the Info column under prefix .. name ("status.therapyState"), for the
-- payload's fields and those of its structures, not inside arrays (prefix nil).
decode_fields = function(ctx, tree, owner, fields, scope, prefix)
    for _, f in ipairs(fields) do
        local ok, text = decode_field(ctx, tree, owner, f, scope, prefix)
        if text and prefix then ctx.values[prefix .. f.name] = text end
        if not ok then return false end
    end
    return true
end

-- Dissection ----------------------------------------------------------------------------------

local DIRECTION = { [false] = "Host → Pump", [true] = "Pump → Host" }

local function discard(pinfo, root, kind, info)
    root:add(hf.outcome, kind):set_generated()
    root:append_text(", discarded: " .. kind)
    pinfo.cols.info = "Discarded: " .. info
end

local function dissect_message(ptvb, pinfo, root, mtype, is_response, authenticated, n)
    local message = MESSAGES[mtype]
    local direction = is_response and "response" or "request"
    local payload_range = ptvb(HEADER_LENGTH, n)
    local info = DIRECTION[is_response] .. "  "
    if message == nil then
        local item = root:add(hf.message, payload_range, "unknown type " .. mtype)
        local ctx = new_context(ptvb, HEADER_LENGTH, n)
        report(ctx, item, "unknownMessageType", { { "messageType", mtype } })
        item:add(hf.message_error, payload_range, ctx.first_error):set_generated()
        pinfo.cols.info = info .. "unknown message type " .. mtype
        return
    end
    local form = message[direction]
    local title = message.name .. " " .. direction
    local item = root:add(hf.message, payload_range, title)
    root:append_text(", " .. title)
    if form == nil then
        local ctx = new_context(ptvb, HEADER_LENGTH, n)
        report(ctx, item, "noSuchDirection",
            { { "messageType", mtype }, { "isResponse", tostring(is_response) } })
        item:add(hf.message_error, payload_range, ctx.first_error):set_generated()
        pinfo.cols.info = info .. title .. " (not defined: " .. message.name .. " has no " .. direction .. ")"
        return
    end
    local ctx = new_context(ptvb, HEADER_LENGTH, n)
    local scope = {}
    if decode_fields(ctx, item, form.owner, form.fields, scope, "") and ctx.pos < n then
        local rest = item:add(hf.trailing, ptvb(HEADER_LENGTH + ctx.pos, n - ctx.pos))
        report(ctx, rest, "trailingBytes", { { "count", n - ctx.pos } })
    end
    if ctx.first_error then
        item:add(hf.message_error, payload_range, ctx.first_error):set_generated()
    end

    -- Authentication rules a single frame shows (SPEC §8.3).
    if not is_response and message.auth == "required" and not authenticated then
        item:add_proto_expert_info(ef.auth_missing,
            "changing request without a tag: the pump answers Error authenticationRequired (SPEC §8.3)")
    elseif message.name == "Hello" and not is_response and authenticated then
        item:add_proto_expert_info(ef.auth_ignored, "Hello requests are never authenticated; the pump ignores the tag")
    elseif message.name == "Hello" and is_response and not authenticated then
        item:add_proto_expert_info(ef.auth_missing, "Hello answers are always authenticated (SPEC §8.3)")
    end

    info = info .. title .. "  id=" .. fmt_int(ptvb(3, 4):le_uint())
    if is_response and ptvb(3, 4):le_uint() == 0 then info = info .. " (unsolicited)" end
    if message.name == "Error" and is_response and scope.code then
        item:add_proto_expert_info(ef.error_response,
            "Error " .. (enum_name("ErrorCode", scope.code) or fmt_int(scope.code)))
    end
    for _, key in ipairs(form.summary) do
        if ctx.values[key] then
            info = info .. "  " .. key:gsub("^.*%.", "") .. "=" .. ctx.values[key]
        end
    end
    if ctx.first_error then info = info .. "  [" .. ctx.first_error .. "]" end
    pinfo.cols.info = info
end

function pumplink.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "PumpLink"
    local root = tree:add(pumplink, tvb())
    local captured, reported = tvb:len(), tvb:reported_len()
    local length_item = root:add(hf.candidate_length, tvb(), reported)
    if captured < reported then
        length_item:add_proto_expert_info(ef.capture_truncated,
            string.format("only %d of %d bytes were captured", captured, reported))
    end

    local cobs = cobs_decode(tvb:raw())
    if cobs.delimiter_at then
        root:add_tvb_expert_info(ef.delimiter, tvb(cobs.delimiter_at, 1),
            "0x00 inside the candidate: decoded up to it")
    end
    if cobs.overflow or captured < reported then
        root:add_tvb_expert_info(ef.oversize, tvb(),
            string.format("decodes to more than %d bytes (the largest packet)", MAX_PACKET))
        discard(pinfo, root, "oversize", string.format("oversize candidate (%d bytes on the line)", reported))
        return
    end

    root:add(hf.cobs_blocks, tvb(), cobs.blocks):set_generated()
    local n = cobs.length
    local ptvb = nil
    if n > 0 then
        ptvb = ByteArray.new(bytes_to_string(cobs.bytes, 1, n), true):tvb("Unstuffed packet")
    end
    local whole = ptvb and ptvb() or tvb()
    root:add(hf.packet_length, whole, n):set_generated()

    if cobs.remaining ~= 0 then
        local code_item = root:add(hf.cobs_code, tvb(cobs.last_code_at, 1))
        root:add_tvb_expert_info(ef.truncated, tvb(cobs.last_code_at, captured - cobs.last_code_at),
            string.format("the candidate ends inside a COBS block: code 0x%02x announces %d data bytes, %d are missing"
                .. " (%d bytes decoded)", cobs.code, cobs.code - 1, cobs.remaining, n))
        code_item:set_generated()
        discard(pinfo, root, "truncated", string.format("truncated (COBS block cut short, %d bytes decoded)", n))
        return
    end
    if n < MIN_PACKET then
        root:add_tvb_expert_info(ef.too_short, whole,
            string.format("%d bytes; a packet has at least %d (header and check)", n, MIN_PACKET))
        discard(pinfo, root, "tooShort", string.format("too short (%d bytes)", n))
        return
    end

    -- The check comes first: no field of a corrupted packet is trusted (SPEC §3.4).
    local received = ptvb(n - CHECK_LENGTH, CHECK_LENGTH):le_uint()
    local computed = crc32c(cobs.bytes, 1, n - CHECK_LENGTH)
    local good = received == computed

    local flags = ptvb(1, 1):uint()
    local version = ptvb(0, 1):uint()
    local mtype = ptvb(2, 1):uint()
    local declared = ptvb(7, 2):le_uint()
    local is_response = bit32.band(flags, FLAG_RESPONSE) ~= 0
    local authenticated = bit32.band(flags, FLAG_AUTHENTICATED) ~= 0
    local sealed = bit32.band(flags, FLAG_SEALED) ~= 0
    local tag_length = (authenticated or sealed) and TAG_LENGTH or 0

    local header = root:add(hf.header, ptvb(0, HEADER_LENGTH))
    if not good then header:append_text(" (not trusted: check failed)") end
    local version_item = header:add(hf.version, ptvb(0, 1))
    local flags_item = header:add(hf.flags, ptvb(1, 1))
    flags_item:add(hf.flag_response, ptvb(1, 1))
    flags_item:add(hf.flag_authenticated, ptvb(1, 1))
    flags_item:add(hf.flag_sealed, ptvb(1, 1))
    local reserved_item = flags_item:add(hf.flag_reserved, ptvb(1, 1))
    header:add(hf.type, ptvb(2, 1))
    header:add_le(hf.request_id, ptvb(3, 4))
    local length_field = header:add_le(hf.payload_length, ptvb(7, 2))

    local check_range = ptvb(n - CHECK_LENGTH, CHECK_LENGTH)
    local function add_check()
        local item = root:add_le(hf.crc, check_range)
        item:add(hf.crc_computed, check_range, computed):set_generated()
        item:add(hf.crc_status, check_range, good and 1 or 0):set_generated()
        item:append_text(good and " [correct]" or string.format(" [incorrect, should be 0x%08x]", computed))
        return item
    end
    if not good then
        local crc_item = add_check()
        crc_item:add_proto_expert_info(ef.check_failed,
            string.format("CRC-32C 0x%08x in the packet, 0x%08x computed: payload not decoded", received, computed))
        discard(pinfo, root, "checkFailed", string.format("bad CRC-32C (received 0x%08x, computed 0x%08x)",
            received, computed))
        return
    end

    local direction_item = header:add(hf.direction, ptvb(1, 1), DIRECTION[is_response])
    direction_item:set_generated()
    pinfo.cols.src = is_response and "Pump" or "Host"
    pinfo.cols.dst = is_response and "Host" or "Pump"

    if version ~= 1 and version ~= 2 then
        version_item:add_proto_expert_info(ef.unsupported_version,
            string.format("version %d; this dissector knows versions 1 and 2", version))
        add_check()
        discard(pinfo, root, "unsupportedVersion", string.format("unsupported version %d", version))
        return
    end
    if bit32.band(flags, FLAGS_RESERVED) ~= 0 or (sealed and (version == 1 or authenticated)) then
        reserved_item:add_proto_expert_info(ef.reserved_flags,
            string.format("flags 0x%02x: bits 3-7 must be 0; sealed (bit 2) only in version 2, never with bit 1", flags))
        add_check()
        discard(pinfo, root, "reservedFlags", string.format("reserved flag bits set (flags 0x%02x)", flags))
        return
    end
    if declared > MAX_PAYLOAD or HEADER_LENGTH + declared + tag_length + CHECK_LENGTH ~= n
        or (sealed and declared < COUNTER_LENGTH) then
        local why
        if declared > MAX_PAYLOAD then
            why = string.format("payload length %d is above the maximum %d", declared, MAX_PAYLOAD)
        elseif sealed and declared < COUNTER_LENGTH then
            why = string.format("sealed payload length %d cannot hold its %d-byte counter", declared, COUNTER_LENGTH)
        else
            why = string.format("payload length %d%s makes a packet of %d bytes; it is %d", declared,
                authenticated and " with a tag" or "", HEADER_LENGTH + declared + tag_length + CHECK_LENGTH, n)
        end
        length_field:add_proto_expert_info(ef.length_mismatch, why)
        add_check()
        discard(pinfo, root, "lengthMismatch", string.format("length mismatch (payload length %d, packet %d bytes)",
            declared, n))
        return
    end

    root:add(hf.outcome, "frame"):set_generated()
    local payload_item = root:add(hf.payload, ptvb(HEADER_LENGTH, declared))
    payload_item:set_hidden()
    if sealed then
        -- Version 2: the header and counter are in clear, the payload is not (SPEC §8.4).
        local message = MESSAGES[mtype]
        local title = (message and message.name or ("type " .. mtype)) .. " " .. (is_response and "response" or "request")
        root:append_text(", " .. title .. " (sealed)")
        root:add_le(hf.counter, ptvb(HEADER_LENGTH, COUNTER_LENGTH))
        root:add(hf.ciphertext, ptvb(HEADER_LENGTH + COUNTER_LENGTH, declared - COUNTER_LENGTH))
        local info = DIRECTION[is_response] .. "  " .. title .. "  id=" .. fmt_int(ptvb(3, 4):le_uint())
        if is_response and ptvb(3, 4):le_uint() == 0 then info = info .. " (unsolicited)" end
        pinfo.cols.info = info .. "  [sealed, counter " .. tostring(ptvb(HEADER_LENGTH, COUNTER_LENGTH):le_uint64()) .. "]"
        local tag_item = root:add(hf.tag, ptvb(HEADER_LENGTH + declared, TAG_LENGTH))
        tag_item:add(hf.tag_status, ptvb(HEADER_LENGTH + declared, TAG_LENGTH),
            "Poly1305 tag, not verified: needs the session keys (SPEC §8.4)"):set_generated()
        add_check()
        return
    end
    dissect_message(ptvb, pinfo, root, mtype, is_response, authenticated, declared)

    if authenticated then
        local tag_item = root:add(hf.tag, ptvb(HEADER_LENGTH + declared, TAG_LENGTH))
        tag_item:add(hf.tag_status, ptvb(HEADER_LENGTH + declared, TAG_LENGTH),
            "not verified: needs the pump's pairing key and the session's nonces (SPEC §8.2)"):set_generated()
    end
    add_check()
end

local encap = (wtap_encaps and wtap_encaps.USER0) or (wtap and wtap.USER0) or 45
DissectorTable.get("wtap_encap"):add(encap, pumplink)
