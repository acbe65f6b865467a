// context_amd64.S — goroutine context switches for x86-64 System V.
// Go's gogo, mcall and gosave (asm_amd64.s), the goexit trampoline and
// asyncPreempt (preempt_amd64.s).
// A saved context is CTX_FRAME_SIZE bytes at Gobuf::sp, laid out in
// context_amd64.h (shared with context.hpp); SAVE_CONTEXT's pushes build
// that layout, and the .if below checks that they do. Only callee-saved
// state is kept: every switch happens at a call boundary (asyncPreempt,
// entered at any instruction, saves the rest itself before its call).

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

// void goro_callentry(void (*fn)(void*), void* arg): the goroutine's first
// frame (goentry) calls its function through here. The frame record this
// pushes is {0, 0}: the frame-pointer chain of every goroutine ends here,
// and the return address goro_callentry_ret marks the call. The preemption
// handler's walk (preempt.cpp) stops at either; the unwinder passes through
// (CFI) to goentry's catch.
        .globl goro_callentry
        .hidden goro_callentry
        .globl goro_callentry_ret
        .hidden goro_callentry_ret
        .type goro_callentry, @function
        .p2align 4
goro_callentry:
        .cfi_startproc
        GORO_ENDBR
        pushq %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq $0
        .cfi_adjust_cfa_offset 8
        pushq $0
        .cfi_adjust_cfa_offset 8
        movq %rsp, %rbp
        .cfi_def_cfa_register %rbp
        movq %rdi, %rax
        movq %rsi, %rdi
        call *%rax
goro_callentry_ret:
        leaq 16(%rbp), %rsp
        .cfi_def_cfa %rsp, 16
        popq %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        ret
        .cfi_endproc
        .size goro_callentry, .-goro_callentry

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

// goro_asyncPreempt: entered, not called. The preemption signal's handler
// (preempt.cpp) found the goroutine at a safe point, stepped over the SysV
// red zone (128 bytes below %rsp, which the interrupted function may use),
// pushed the interrupted pc there and pointed %rip here. Every register the
// interrupted code may hold is saved (general registers, flags, and the x87,
// SSE, AVX and later state with XSAVE, or FXSAVE where XSAVE is missing),
// goro_asyncPreempt2 yields the P, and everything is restored exactly:
// `ret $128` returns to the interrupted pc with %rsp as it was. Go's
// asyncPreempt (preempt_amd64.s).
//
// Frame, from the top: the red zone, the interrupted pc, %rbp (the frame
// pointer chain goes on through the interrupted frame), flags, the 14 other
// general registers, then the XSAVE area, 64-byte aligned.
        .globl goro_asyncPreempt
        .hidden goro_asyncPreempt
        .type goro_asyncPreempt, @function
        .p2align 4
goro_asyncPreempt:
        .cfi_startproc
        .cfi_def_cfa %rsp, 136
        .cfi_offset %rip, -136
        pushq %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        movq %rsp, %rbp
        .cfi_def_cfa_register %rbp
        pushfq
        pushq %rax
        pushq %rbx
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        cld                             // the C++ below expects DF clear
        movl goro_xsave_size(%rip), %eax
        subq %rax, %rsp
        andq $-64, %rsp
        cmpb $0, goro_have_xsave(%rip)
        je 1f
        // XRSTOR faults unless the XSAVE header (bytes 512-575) past
        // XSTATE_BV is zero, and XSAVE writes only XSTATE_BV.
        xorl %eax, %eax
        movq %rax, 512(%rsp)
        movq %rax, 520(%rsp)
        movq %rax, 528(%rsp)
        movq %rax, 536(%rsp)
        movq %rax, 544(%rsp)
        movq %rax, 552(%rsp)
        movq %rax, 560(%rsp)
        movq %rax, 568(%rsp)
        movl $-1, %eax                  // every component XCR0 enables
        movl $-1, %edx
        xsave64 (%rsp)
        jmp 2f
1:
        fxsave64 (%rsp)
2:
        call goro_asyncPreempt2
        cmpb $0, goro_have_xsave(%rip)
        je 3f
        movl $-1, %eax
        movl $-1, %edx
        xrstor64 (%rsp)
        jmp 4f
3:
        fxrstor64 (%rsp)
4:
        leaq -120(%rbp), %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %r11
        popq %r10
        popq %r9
        popq %r8
        popq %rdi
        popq %rsi
        popq %rdx
        popq %rcx
        popq %rbx
        popq %rax
        popfq
        popq %rbp
        .cfi_def_cfa %rsp, 136
        ret $128
        .cfi_endproc
        .size goro_asyncPreempt, .-goro_asyncPreempt

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
