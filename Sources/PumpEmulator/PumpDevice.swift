import PumpProtocol

/// The pump itself, as the protocol side sees it: the seam between `PumpEndpoint` (frames,
/// authentication, request record, staging) and the pump model (delivery, alarms, log).
///
/// Every operation first brings the pump up to `nowMs`; an operation either changes the pump
/// and answers, or refuses with a `ProtocolRefusal` and changes nothing.
public protocol PumpDevice: Sendable {
    var identity: DeviceIdentity { get }
    mutating func advance(to nowMs: UInt64)
    /// Status; `lastExecutedRequestId` is filled in by the endpoint.
    func status(nowMs: UInt64) -> Status
    func events(from firstSequence: UInt32, maxCount: Int) -> ReadEventsResponse
    var activeProgram: Program? { get }
    /// Problem code (SPEC §9) if the program breaks a rule, else nil; and its largest daily dose.
    func check(_ program: Program) -> (problem: UInt32?, dailyDoseMicrograms: UInt32)

    mutating func activate(_ program: Program, nowMs: UInt64, requestID: UInt32) -> Result<ProgramActivateResponse, ProtocolRefusal>
    mutating func refill(_ request: RefillRequest, nowMs: UInt64, requestID: UInt32) -> Result<RefillResponse, ProtocolRefusal>
    mutating func setClock(_ request: SetClockRequest, nowMs: UInt64, requestID: UInt32) -> Result<SetClockResponse, ProtocolRefusal>
    mutating func acknowledgeAlarms(_ mask: UInt32, nowMs: UInt64, requestID: UInt32) -> Result<AcknowledgeAlarmsResponse, ProtocolRefusal>
    mutating func suspend(nowMs: UInt64, requestID: UInt32) -> Result<SuspendResponse, ProtocolRefusal>
    mutating func resume(nowMs: UInt64, requestID: UInt32) -> Result<ResumeResponse, ProtocolRefusal>
    mutating func clinicianBolus(_ request: ClinicianBolusRequest, nowMs: UInt64, requestID: UInt32) -> Result<ClinicianBolusResponse, ProtocolRefusal>
    /// A refusal by lockout or daily maximum is an outcome in the response, not a `ProtocolRefusal`.
    mutating func patientBolus(nowMs: UInt64, requestID: UInt32) -> Result<PatientBolusResponse, ProtocolRefusal>
}

public struct DeviceIdentity: Sendable, Hashable, Codable {
    public var model: String
    public var serialNumber: String
    public var firmwareVersion: String
    public var reservoirCapacityMicroliters: UInt32

    public init(model: String, serialNumber: String, firmwareVersion: String, reservoirCapacityMicroliters: UInt32) {
        self.model = model
        self.serialNumber = serialNumber
        self.firmwareVersion = firmwareVersion
        self.reservoirCapacityMicroliters = reservoirCapacityMicroliters
    }
}

/// Why the pump refused a request; it changed nothing.
public struct ProtocolRefusal: Error, Sendable, Hashable {
    public var code: ErrorCode
    public var detail: UInt32

    public init(_ code: ErrorCode, detail: UInt32 = 0) {
        self.code = code
        self.detail = detail
    }
}
