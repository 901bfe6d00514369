// SwiftPM builds a C target from at least one source file; the declaration is in the header.
#include "CLibFuzzer.h"
