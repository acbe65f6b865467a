/* arch/context_amd64.h — the saved-context layout, included by both
 * context_amd64.S and context.hpp (marl's osfiber_asm_x64.h idea), so the
 * offsets are written once; context.hpp static_asserts them against Gobuf.
 * A saved context is CTX_FRAME_SIZE bytes at Gobuf::sp, lowest address
 * first: the control words (mxcsr, 4 bytes; x87 control word, 2), the
 * callee-saved registers in reverse push order, then the resume pc.
 * Plain C preprocessor definitions only: the assembler reads this too. */
#ifndef GORO_RUNTIME_ARCH_CONTEXT_AMD64_H
#define GORO_RUNTIME_ARCH_CONTEXT_AMD64_H

/* Gobuf (context.hpp) */
#define GOBUF_SP 0
#define GOBUF_FIBER 8

/* A saved context at Gobuf::sp */
#define CTX_CONTROL 0
#define CTX_R15 8
#define CTX_R14 16
#define CTX_R13 24
#define CTX_R12 32
#define CTX_RBX 40
#define CTX_RBP 48
#define CTX_PC 56
#define CTX_FRAME_SIZE 64

/* Indirect branch tracking (CET IBT): with -fcf-protection the entry points
 * begin with endbr64 and the object says it supports IBT. Not shadow
 * stacks: a context switch returns on another stack, which SHSTK forbids. */
#if defined(__CET__) && (__CET__ & 1)
#define GORO_ENDBR endbr64
#define GORO_IBT 1
#else
#define GORO_ENDBR
#define GORO_IBT 0
#endif

#endif
