import type { ErrorDetail } from '@iotflow/contracts'

/** An error that the error handler answers as-is: its status, message and details. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly errors?: ErrorDetail[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const httpError = (
  statusCode: number,
  message: string,
  errors?: ErrorDetail[],
  headers?: Record<string, string>,
) => new HttpError(statusCode, message, errors, headers)
