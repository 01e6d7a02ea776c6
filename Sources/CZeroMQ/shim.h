#ifndef SETTLENET_CZEROMQ_SHIM_H
#define SETTLENET_CZEROMQ_SHIM_H
#include <zmq.h>
/* EventPoller waits on the sockets' ZMQ_FD descriptors with epoll (Linux). */
#include <sys/epoll.h>
/* ...and sleeps until a deadline on a timer descriptor (EventPoller.wait(untilUs:)). */
#include <sys/timerfd.h>
/* NativeDealer speaks ZMTP over its own TCP connection. */
#include <netinet/tcp.h>
#endif
