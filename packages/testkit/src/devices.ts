/** Registers a device through a running gateway's admin API; fails loudly on anything but 201. */
export async function registerDeviceOverHttp(
  gatewayUrl: string,
  adminToken: string,
  name: string,
): Promise<{ id: number; apiKey: string }> {
  const response = await fetch(`${gatewayUrl}/api/v1/devices`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  if (response.status !== 201)
    throw new Error(`register ${name}: ${response.status} ${await response.text()}`)
  const body = (await response.json()) as { device: { id: number }; api_key: string }
  return { id: body.device.id, apiKey: body.api_key }
}
