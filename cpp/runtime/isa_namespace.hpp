// Included by kernel files that are compiled once per ISA with
// -DFASTOPT_ISA=<name>: their code goes in namespace fastopt::FASTOPT_ISA, and
// FASTOPT_CONCAT(prefix_, FASTOPT_ISA) names the per-ISA table getter.
#pragma once

#ifndef FASTOPT_ISA
#error "kernel files are compiled once per ISA with -DFASTOPT_ISA=<isa name>"
#endif
#define FASTOPT_CONCAT_(a, b) a##b
#define FASTOPT_CONCAT(a, b) FASTOPT_CONCAT_(a, b)
