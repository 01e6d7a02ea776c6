#ifndef SETTLENET_CZEROMQ_SHIM_H
#define SETTLENET_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
