#ifndef PUMPLINK_CLIBSERIALPORT_SHIM_H
#define PUMPLINK_CLIBSERIALPORT_SHIM_H
#include <libserialport.h>
#endif
