// F3: infinite loop on every CPU with preemption disabled (IRQs on): hangs the kernel under
// every preemption model, unlike F2.
#include <linux/module.h>
#include <linux/preempt.h>
#include "grass_fault.h"

GRASS_FAULT_DELAY_PARAM;

static int grass_f3_thread(void *data)
{
	grass_fault_delay();
	preempt_disable();
	for (;;)
		cpu_relax();
	return 0;
}

static int __init grass_f3_init(void)
{
	pr_emerg("grass fault F3: infinite loop on all CPUs, preemption off\n");
	grass_start_on_each_cpu(grass_f3_thread, "grass_f3/%u");
	return 0;
}
module_init(grass_f3_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault F3: infinite loop on all CPUs with preemption off");
