#ifndef SETTLENET_CSODIUM_SHIM_H
#define SETTLENET_CSODIUM_SHIM_H
/* CurveZMQ on the native transport (ZeroMQ's CurveZMQ.swift): the boxes libzmq makes with it. */
#include <sodium.h>
#endif
