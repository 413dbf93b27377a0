/** IP parsing lives in the wire contract: clients key addresses the same way. */
export * from '#contract/ip';
