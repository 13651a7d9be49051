// The plan both consumer apps analyse (web/ and core-only/): its optimal time is 480 s.
export const TEA_PLAN = JSON.stringify({
  title: 'How to make tea',
  steps: [{ id: 'boil', text: 'Boil water', duration: '5 minutes' },
    { id: 'cup', text: 'Fetch a cup', duration: '1 minute' },
    { id: 'steep', text: 'Steep', duration: '3 minutes' }],
  constraints: [['boil', 'steep'], ['cup', 'steep']],
});
