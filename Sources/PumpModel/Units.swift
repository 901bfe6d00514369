/// Exact dose arithmetic.
///
/// The pump integrates delivery in *dose units*: one unit is what a rate of 1 µg/day delivers
/// in 1 ms, that is 1/86 400 000 µg. Every quantity the pump handles is then a whole number of
/// units: a dose of d µg is d × 86 400 000 units, a basal rate of r µg/day over t ms is r × t
/// units, and one µL of a drug at c µg/mL is c × 86 400 units. Integration adds whole numbers
/// and never rounds, so months of simulated time cannot drift.
public enum DoseUnits {
    /// Units in one microgram.
    public static let perMicrogram: UInt64 = 86_400_000

    /// Units in one microlitre of drug at `concentration` µg/mL (1 µL holds c/1000 µg).
    public static func perMicroliter(concentrationMicrogramsPerMilliliter concentration: UInt32) -> UInt64 {
        UInt64(concentration) * 86_400
    }
}

/// A non-negative rational `quotient + remainder / divisor`, kept exact.
public struct ExactQuotient: Sendable, Hashable, Codable {
    public private(set) var quotient: UInt64
    /// Always below `divisor`.
    public private(set) var remainder: UInt64
    public let divisor: UInt64

    public init(numerator: UInt64 = 0, divisor: UInt64) {
        precondition(divisor > 0, "ExactQuotient needs a positive divisor")
        self.quotient = numerator / divisor
        self.remainder = numerator % divisor
        self.divisor = divisor
    }

    init(quotient: UInt64, remainder: UInt64, divisor: UInt64) {
        precondition(divisor > 0 && remainder < divisor, "ExactQuotient remainder must be below its divisor")
        self.quotient = quotient
        self.remainder = remainder
        self.divisor = divisor
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let quotient = try container.decode(UInt64.self, forKey: .quotient)
        let remainder = try container.decode(UInt64.self, forKey: .remainder)
        let divisor = try container.decode(UInt64.self, forKey: .divisor)
        guard divisor > 0, remainder < divisor else {
            throw DecodingError.dataCorruptedError(forKey: .remainder, in: container,
                                                   debugDescription: "remainder must be below a positive divisor")
        }
        self.init(quotient: quotient, remainder: remainder, divisor: divisor)
    }

    /// The value rounded up to a whole number.
    public var roundedUp: UInt64 { remainder == 0 ? quotient : quotient + 1 }

    /// Adds `numerator / divisor`; returns how many whole units the carry added to `quotient`.
    @discardableResult
    public mutating func add(_ numerator: UInt64) -> UInt64 {
        // The remainder is below the divisor, so splitting first keeps the sum in range.
        let whole = numerator / divisor
        let sum = remainder + numerator % divisor
        let carried = whole + sum / divisor
        quotient += carried
        remainder = sum % divisor
        return carried
    }
}

/// The pump's local calendar: local time = UTC + utcOffsetMinutes; weeks start on Monday, the
/// day index is the bit of a `dayMask` (bit 0 Monday … bit 6 Sunday). 1970-01-01 was a Thursday.
public enum PumpCalendar {
    public static let millisecondsPerMinute: Int64 = 60_000
    public static let millisecondsPerDay: Int64 = 86_400_000
    public static let millisecondsPerWeek: Int64 = 7 * 86_400_000
    public static let minutesPerDay = 1440
    public static let minutesPerWeek = 7 * 1440
    /// The latest pump time there is, 9999-12-31T23:59:59.999Z (SPEC §6.15): a clock beyond it
    /// is refused, and the model treats a later caller time as this one, so that pump, local and
    /// reference times stay far inside `Int64` and no sum of them can overflow.
    public static let latestTimeMs: UInt64 = 253_402_300_799_999

    /// Local milliseconds since the local epoch: UTC ms plus the offset.
    public static func localMilliseconds(utcMs: UInt64, utcOffsetMinutes: Int16) -> Int64 {
        Int64(clamping: utcMs) + Int64(utcOffsetMinutes) * millisecondsPerMinute
    }

    /// 0 Monday … 6 Sunday.
    public static func weekday(localMs: Int64) -> Int {
        let day = floorDivide(localMs, millisecondsPerDay)
        // Day 0 (1970-01-01) was a Thursday, index 3.
        return Int(floorModulo(day + 3, 7))
    }

    /// Milliseconds since the start of the local day.
    public static func millisecondOfDay(localMs: Int64) -> Int64 {
        floorModulo(localMs, millisecondsPerDay)
    }

    /// Milliseconds since Monday 00:00 local.
    public static func millisecondOfWeek(localMs: Int64) -> Int64 {
        Int64(weekday(localMs: localMs)) * millisecondsPerDay + millisecondOfDay(localMs: localMs)
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r < 0 ? r + b : r
    }
}

extension UInt64 {
    func saturatingMultiplied(by other: UInt64) -> UInt64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }

    func saturatingAdding(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// `self × multiplier / divisor`, rounded down, without intermediate overflow; saturates.
    func multiplied(by multiplier: UInt64, dividedBy divisor: UInt64) -> UInt64 {
        let product = multipliedFullWidth(by: multiplier)
        guard product.high < divisor else { return .max }
        return divisor.dividingFullWidth(product).quotient
    }
}
