import { type Static, Type } from '@sinclair/typebox'

/** One problem in a request: where (`points[17].data.humidity`) and what. */
export const ErrorDetail = Type.Object({
  path: Type.String({ description: 'where in the request, e.g. points[17].data.humidity' }),
  message: Type.String(),
})
export type ErrorDetail = Static<typeof ErrorDetail>

/** The single error shape of every 4xx and 5xx answer. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'the HTTP reason phrase' }),
    message: Type.String(),
    errors: Type.Optional(Type.Array(ErrorDetail)),
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse' },
)
export type ErrorResponse = Static<typeof ErrorResponse>
