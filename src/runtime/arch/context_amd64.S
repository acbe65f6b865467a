// context_amd64.S — goroutine context switches for x86-64 System V.
// Go's gogo, mcall and gosave (asm_amd64.s) and the goexit trampoline.
// A saved context is CTX_FRAME_SIZE bytes at Gobuf::sp, laid out in
// context_amd64.h (shared with context.hpp); SAVE_CONTEXT's pushes build
// that layout, and the .if below checks that they do. Only callee-saved
// state is kept: every switch happens at a call boundary.

#include "context_amd64.h"

// The pushes below, last first: control words, r15, r14, r13, r12, rbx,
// rbp, and the caller's return address above them.
.if CTX_CONTROL != 0 || CTX_R15 != 8 || CTX_R14 != 16 || CTX_R13 != 24 || CTX_R12 != 32 || CTX_RBX != 40 || CTX_RBP != 48 || CTX_PC != 56 || CTX_FRAME_SIZE != 64
.error "context_amd64.h does not match SAVE_CONTEXT"
.endif

        .text
        .hidden goro_tsan_switch_hook

// Push the callee-saved registers and the control words: a saved context.
.macro SAVE_CONTEXT
        pushq %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0
        subq $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw 4(%rsp)
.endm

// Pop a saved context at %rsp and return into it.
.macro RESTORE_CONTEXT
        ldmxcsr (%rsp)
        fldcw 4(%rsp)
        addq $8, %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret
.endm

// void goro_gogo(Gobuf* buf)
        .globl goro_gogo
        .hidden goro_gogo
        .type goro_gogo, @function
        .p2align 4
goro_gogo:
        .cfi_startproc
        GORO_ENDBR
        .cfi_undefined %rip
        // Under TSan, tell it before leaving: the code that follows runs
        // on buf's fiber. The hook is set by the C++ side when that is
        // compiled with -fsanitize=thread (san.hpp), so this file needs no
        // sanitizer flags of its own.
        movq goro_tsan_switch_hook(%rip), %rax
        testq %rax, %rax
        jz 1f
        movq %rdi, %rbx
        andq $-16, %rsp
        movq GOBUF_FIBER(%rdi), %rdi
        xorl %esi, %esi
        call *%rax
        movq %rbx, %rdi
1:
        movq GOBUF_SP(%rdi), %rsp
        RESTORE_CONTEXT
        .cfi_endproc
        .size goro_gogo, .-goro_gogo

// void goro_mcall(Gobuf* save, Gobuf* g0, McallFn fn, G* gp)
        .globl goro_mcall
        .hidden goro_mcall
        .type goro_mcall, @function
        .p2align 4
goro_mcall:
        .cfi_startproc
        GORO_ENDBR
        SAVE_CONTEXT
        movq %rsp, GOBUF_SP(%rdi)
        movq GOBUF_SP(%rsi), %rsp       // on g0 now; its sp is 16-byte aligned
        .cfi_undefined %rip
        movq %rcx, %rdi
        call *%rdx
        movq %rax, %rdi
        jmp goro_gogo
        .cfi_endproc
        .size goro_mcall, .-goro_mcall

// void goro_gosave(Gobuf* buf, void (*fn)(void*), void* arg)
        .globl goro_gosave
        .hidden goro_gosave
        .type goro_gosave, @function
        .p2align 4
goro_gosave:
        .cfi_startproc
        GORO_ENDBR
        SAVE_CONTEXT
        movq %rsp, GOBUF_SP(%rdi)
        movq %rdx, %rdi
        call *%rsi
        RESTORE_CONTEXT
        .cfi_endproc
        .size goro_gosave, .-goro_gosave

// A goroutine's entry function returns to goro_goexit+1.
        .globl goro_goexit
        .hidden goro_goexit
        .type goro_goexit, @function
        .p2align 4
goro_goexit:
        .cfi_startproc
        .cfi_undefined %rip
        nop
        call goro_goexit1@PLT
        ud2
        .cfi_endproc
        .size goro_goexit, .-goro_goexit

        .section .note.GNU-stack,"",@progbits

#if GORO_IBT
// GNU property note: this object supports IBT (and only that).
        .section .note.gnu.property,"a"
        .p2align 3
        .long 4                 // name size
        .long 16                // descriptor size
        .long 5                 // NT_GNU_PROPERTY_TYPE_0
        .asciz "GNU"
        .long 0xc0000002        // GNU_PROPERTY_X86_FEATURE_1_AND
        .long 4                 // data size
        .long 1                 // GNU_PROPERTY_X86_FEATURE_1_IBT
        .p2align 3
#endif
