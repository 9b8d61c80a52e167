/** A thrown value as an Error (a rejection may carry anything). */
export const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)))
