// The offline site's only script: the page list stays open beside the page on a wide screen (on a phone it is a
// menu, so that the page itself fills the first screen), and KaTeX renders the notebooks' $...$ math.
document.addEventListener('DOMContentLoaded', () => {
  const menu = document.querySelector('.site-menu');
  if (menu && window.matchMedia('(min-width: 50rem)').matches) menu.open = true;
  renderMathInElement(document.querySelector('main.site-main'), {
    delimiters: [{left: '$$', right: '$$', display: true}, {left: '$', right: '$', display: false}],
    throwOnError: false,
  });
});
