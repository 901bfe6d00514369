import Foundation
import Hummingbird
import PumpAPIRequests

/// JSON in and out of the API as `APIJSON` writes and reads it, and as HTTP responses.
struct JSONEncoding: Sendable {
    func encode(_ value: some Encodable) throws -> Data {
        try APIJSON.encode(value)
    }

    func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(data.count)],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func errorResponse(_ error: DaemonError, status: HTTPResponse.Status) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if status == .unauthorized {
            headers[.wwwAuthenticate] = "Bearer realm=\"pumplinkd\""
        }
        // Encoding strings and a dictionary of strings cannot fail; the fallback is for form.
        let data = (try? encode(ErrorEnvelope(error))) ?? Data(#"{"error":{"code":"internalError","message":"","details":{}}}"#.utf8)
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A request body decoded strictly (`APIJSON.decodeStrict`): a JSON object of `T`'s fields
    /// and no others, at any depth.
    func decodeStrict<T: Codable>(_ type: T.Type, from data: Data) throws(APIError) -> T {
        do {
            return try APIJSON.decodeStrict(T.self, from: data)
        } catch {
            throw APIError(error)
        }
    }
}
