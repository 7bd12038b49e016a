// thinwire in one include: what a program that compresses, communicates and trains calls.
//
//   codecs       codec::make_codec(spec), Codec::encode, codec::decode (messages describe
//                themselves), codec::ErrorFeedback
//   transports   comm::run_threads_world (the embedded backend, optionally on a simulated link),
//                comm::MpiTransport (thinwire/comm/mpi.hpp, built with OpenMPI: THINWIRE_HAVE_MPI)
//   collectives  collective::allreduce (all-gather, ring), parameter_server, gossip, broadcast,
//                and what an iteration costs (collective/pricing.hpp)
//   tuning       tune::make_tuner (fixed, schedule, dynamic), tune::make_cost_model
//   training     train::TrainConfig, train::train_threads / train_mpi (the engine behind
//                `thinwire train`)
//
// examples/ shows each in a short program; docs/ has the math and the wire format.
#pragma once

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/broadcast.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "thinwire/collective/pricing.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/comm/link_model.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/comm/transport.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/data/load.hpp"
#include "thinwire/problem/problem.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/engine.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/tuner.hpp"
