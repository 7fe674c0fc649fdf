/**
 * What a DynamoDB number can hold: at most 38 significant digits, and a
 * magnitude between 1E-130 and 9.9999999999999999999999999999999999999E+125
 * (or zero). A value outside either is refused by DynamoDB at write time, for
 * the whole batch; ferry checks each value when it builds the item, so the bad
 * record is named and the error policy applies.
 */
export const DYNAMODB_MAX_DIGITS = 38;
export const DYNAMODB_MIN_EXPONENT = -130;
export const DYNAMODB_MAX_EXPONENT = 125;

const DECIMAL = /^[-+]?(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/;

/** Digits of a decimal string without sign, point, leading or trailing zeros: what DynamoDB counts. */
export function significantDigits(decimal: string): number {
  const digits = decimal.replace(/^[-+]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '');
  return digits.replace(/0+$/, '').length;
}

/** The power of ten of the leading significant digit (123.4 → 2, 0.05 → -2, 1e-300 → -300); undefined for zero. */
export function decimalExponent(decimal: string): number | undefined {
  const m = DECIMAL.exec(decimal);
  if (!m) return undefined;
  const whole = (m[1] ?? '').replace(/^0+/, '');
  const fraction = m[2] ?? '';
  const exponent = Number(m[3] ?? 0);
  if (whole) return whole.length - 1 + exponent;
  const zeros = /^0*/.exec(fraction)![0].length;
  return zeros === fraction.length ? undefined : exponent - zeros - 1;
}

/** Why DynamoDB would refuse this number, or undefined when it fits. */
export function dynamoNumberProblem(decimal: string): string | undefined {
  const digits = significantDigits(decimal);
  if (digits > DYNAMODB_MAX_DIGITS) return `value ${decimal} has ${digits} significant digits; DynamoDB numbers hold at most ${DYNAMODB_MAX_DIGITS}`;
  const exponent = decimalExponent(decimal);
  if (exponent !== undefined && (exponent < DYNAMODB_MIN_EXPONENT || exponent > DYNAMODB_MAX_EXPONENT)) {
    return `value ${decimal} is outside DynamoDB's number range (magnitudes from 1E${DYNAMODB_MIN_EXPONENT} to 9.99…E+${DYNAMODB_MAX_EXPONENT}, and zero)`;
  }
  return undefined;
}
