/// The query parameters of a request, as the router split and percent-decoded them.
public enum QueryParameters {
    /// `pairs` as a dictionary: every name one of `allowed`, none given twice.
    public static func parse(_ pairs: some Sequence<(name: String, value: String)>, allowed: Set<String>) throws(RequestError) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in pairs {
            guard allowed.contains(name) else {
                throw .badRequest("unknown query parameter \(name)", details: ["parameter": name])
            }
            guard result[name] == nil else {
                throw .badRequest("query parameter \(name) is given twice", details: ["parameter": name])
            }
            result[name] = value
        }
        return result
    }

    /// The value of parameter `name` (nil when absent): a decimal integer, optionally signed, in `range`.
    public static func integer<T: FixedWidthInteger>(_ text: String?, name: String, in range: ClosedRange<T>) throws(RequestError) -> T? {
        guard let text else { return nil }
        guard let value = T(text), range.contains(value) else {
            throw .badRequest(
                "query parameter \(name) must be an integer in \(range.lowerBound)...\(range.upperBound)",
                details: ["parameter": name, "value": text])
        }
        return value
    }
}
