import Testing
@testable import PumpCapture
